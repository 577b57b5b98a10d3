// Hyperswarm / HyperDHT measured in the same shape as ../run.py (strangers).
//
//   npm install && node bench.mjs [--nodes 10] [--rounds 10] [--messages 200] [--quick] [--match-only]
//
// --match-only: only "connect to a waiting peer" and the message round trip
// (no simultaneous joins, no idle-CPU wait); ../paths.py runs it that way.
//
// Builds a loopback HyperDHT network of `--nodes` OS processes (one DHT node per
// process, each bootstrapping through up to three earlier ones, like
// `strangers serve`), then drives Hyperswarm peers, each in its own process,
// over JSON lines on stdin/stdout. Every figure is printed beside raw TCP
// loopback (Node `net`) measured in the same run. Prints one JSON object on
// stdout and a table on stderr.
//
// Nothing ever contacts the public HyperDHT bootstrap nodes: every DHT is
// given an explicit `bootstrap` list of local nodes, and every UDX socket is
// bound to 127.0.0.1 (so a packet to any other address could not leave the
// machine anyway). A guard in each child process also counts every UDP send /
// UDX stream connect to a non-loopback host; the total is reported as
// `non_loopback_destinations` and must be 0.

import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import net from 'node:net'
import readline from 'node:readline'

// Node 20 lacks Promise.withResolvers (Node 22+); polyfill it in case a
// dependency uses it. (Hyperswarm 4.17.2 / HyperDHT 6.34.0 run without it, as
// far as this benchmark exercises them; the polyfill is harmless.)
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const require = createRequire(import.meta.url)
const SCRIPT = fileURLToPath(import.meta.url)
const LOOPBACK = '127.0.0.1'
const MIB = 1024 * 1024

// message types over the Hyperswarm connection (first byte)
const PING = 0x70 // 'p': echo it back as ECHO
const ECHO = 0x65 // 'e'
const BULK = 0x62 // 'b': answer with a small ACK
const ACK = 0x61 // 'a'

// -- statistics (same definitions as bench/run.py) --------------------------------

function percentile (values, q) {
  const ordered = [...values].sort((a, b) => a - b)
  return ordered[Math.min(ordered.length - 1, Math.round(q * (ordered.length - 1)))]
}

function median (values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length

// seconds, like run.py
function summary (valuesMs) {
  const v = valuesMs.map((x) => x / 1000)
  return { median: median(v), p90: percentile(v, 0.9), p99: percentile(v, 0.99), n: v.length }
}

// -- guard: count any destination that is not loopback (runs in every child) -------

const guard = { count: 0, samples: [] }

// --host ADDR (a lab address in network namespaces of bench/run.py's delay router):
// bind there instead, and count as local the lab's own /16 (10.201.x.x), which
// exists only inside those namespaces
let BIND = LOOPBACK
let LAB_PREFIX = null

function isLoopback (host) {
  return typeof host === 'string' && (host.startsWith('127.') || host === '::1' || host === 'localhost' ||
    (LAB_PREFIX !== null && host.startsWith(LAB_PREFIX)))
}

function note (host, port, what) {
  if (isLoopback(host)) return
  guard.count++
  if (guard.samples.length < 5) guard.samples.push(`${what} ${host}:${port}`)
}

function installGuard () {
  const UDX = require('udx-native')
  const udx = new UDX()
  const socket = udx.createSocket()
  const stream = udx.createStream(1)
  const SocketProto = Object.getPrototypeOf(socket)
  const StreamProto = Object.getPrototypeOf(stream)
  stream.destroy()
  socket.close().catch(() => {})
  for (const name of ['send', 'trySend']) {
    const original = SocketProto[name]
    SocketProto[name] = function (buffer, port, host, ttl) {
      note(host, port, `udp ${name}`)
      return original.apply(this, arguments)
    }
  }
  for (const name of ['connect', 'changeRemote']) {
    const original = StreamProto[name]
    StreamProto[name] = function (sock, remoteId, port, host) {
      note(host, port, `udx stream ${name}`)
      return original.apply(this, arguments)
    }
  }
}

// -- child process side ---------------------------------------------------------------

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function commands (handler) {
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    if (!line.trim()) return
    Promise.resolve(handler(JSON.parse(line))).catch((err) => emit({ event: 'error', message: String(err && err.stack || err) }))
  })
  rl.on('close', () => process.exit(0))
}

function stats (extra = {}) {
  return { event: 'stats', rss: process.memoryUsage().rss, non_loopback: guard.count, non_loopback_samples: guard.samples, ...extra }
}

async function dhtNodeMain (bootstrap) {
  installGuard()
  const DHT = require('hyperdht')
  // like createTestnet() in hyperdht/testnet.js, but one node per process
  const dht = new DHT({ ephemeral: false, firewalled: false, bootstrap, host: BIND })
  await dht.fullyBootstrapped()
  const { host, port } = dht.address()
  emit({ event: 'ready', host, port })
  commands(async (cmd) => {
    if (cmd.cmd === 'stats') emit(stats({ table_size: dht.toArray().length }))
    else if (cmd.cmd === 'exit') { await dht.destroy(); process.exit(0) }
  })
}

async function peerMain (bootstrap) {
  installGuard()
  const DHT = require('hyperdht')
  const Hyperswarm = require('hyperswarm')
  // Hyperswarm does not pass `host` to its DHT, so give it one bound to loopback
  const dht = new DHT({ bootstrap, host: BIND })
  const swarm = new Hyperswarm({ dht })
  const conns = []
  const pending = new Map() // id -> resolve
  let nextId = 1
  let joinStart = null
  let reported = false

  swarm.on('connection', (conn, info) => {
    const ms = joinStart === null ? null : performance.now() - joinStart
    conns.push(conn)
    conn.on('error', () => {})
    conn.on('close', () => { const i = conns.indexOf(conn); if (i >= 0) conns.splice(i, 1) })
    conn.on('data', (buf) => {
      const type = buf[0]
      if (type === PING) {
        const reply = Buffer.from(buf); reply[0] = ECHO; conn.write(reply)
      } else if (type === BULK) {
        const reply = Buffer.alloc(8); reply[0] = ACK; reply.writeUInt32BE(buf.readUInt32BE(1), 1); conn.write(reply)
      } else if (type === ECHO || type === ACK) {
        const id = buf.readUInt32BE(1)
        const resolve = pending.get(id)
        if (resolve) { pending.delete(id); resolve() }
      }
    })
    if (!reported) {
      reported = true
      const raw = conn.rawStream
      emit({ event: 'connection', ms, client: info.client, remote: raw ? `${raw.remoteHost}:${raw.remotePort}` : null })
    }
  })

  const live = () => conns[conns.length - 1]
  function request (conn, type, size) {
    const id = nextId++
    const buf = Buffer.alloc(size, 0x78)
    buf[0] = type; buf.writeUInt32BE(id, 1)
    const done = new Promise((resolve) => pending.set(id, resolve))
    conn.write(buf)
    return done
  }

  await dht.fullyBootstrapped()
  emit({ event: 'ready', uptime_ms: performance.now() })

  commands(async (cmd) => {
    if (cmd.cmd === 'join') {
      joinStart = performance.now()
      const discovery = swarm.join(Buffer.from(cmd.topic, 'hex'), { server: cmd.server !== false, client: cmd.client !== false })
      if (cmd.flush) {
        await discovery.flushed()
        emit({ event: 'announced', ms: performance.now() - joinStart })
      }
    } else if (cmd.cmd === 'rtt') {
      // in-process round trips over the open connection
      const conn = live()
      const rtts = []
      for (let i = 0; i < cmd.count; i++) {
        const t = performance.now()
        await request(conn, PING, cmd.size)
        rtts.push(performance.now() - t)
      }
      emit({ event: 'rtt', rtts })
    } else if (cmd.cmd === 'send') {
      // driven from the parent over stdio, like strangers' send -> delivered
      await request(live(), PING, cmd.size)
      emit({ event: 'delivered' })
    } else if (cmd.cmd === 'bulk') {
      const conn = live()
      const t = performance.now()
      const acks = []
      for (let i = 0; i < cmd.count; i++) acks.push(request(conn, BULK, cmd.size))
      await Promise.all(acks)
      emit({ event: 'bulk', ms: performance.now() - t })
    } else if (cmd.cmd === 'stats') {
      emit(stats({ connections: swarm.connections.size }))
    } else if (cmd.cmd === 'exit') {
      await swarm.destroy()
      process.exit(0)
    }
  })
}

// -- parent side ------------------------------------------------------------------------

class Child {
  constructor (role, bootstrap) {
    this.launched = performance.now()
    this.proc = spawn(process.execPath, [SCRIPT, '--role', role, '--bootstrap', JSON.stringify(bootstrap)],
      { stdio: ['pipe', 'pipe', 'inherit'] })
    this.queue = []
    this.waiters = []
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve))
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg
      try { msg = JSON.parse(line) } catch { return }
      msg.at = performance.now()
      if (msg.event === 'error') process.stderr.write(`child ${this.proc.pid}: ${msg.message}\n`)
      this.queue.push(msg)
      this._dispatch()
    })
  }

  _dispatch () {
    for (const w of [...this.waiters]) {
      const i = this.queue.findIndex((m) => m.event === w.event)
      if (i < 0) continue
      const [msg] = this.queue.splice(i, 1)
      this.waiters.splice(this.waiters.indexOf(w), 1)
      clearTimeout(w.timer)
      w.resolve(msg)
    }
  }

  waitFor (event, timeoutMs) {
    return new Promise((resolve, reject) => {
      const w = { event, resolve }
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        reject(new Error(`timeout waiting for ${event} from ${this.proc.pid}`))
      }, timeoutMs)
      this.waiters.push(w)
      this._dispatch()
    })
  }

  send (obj) { this.proc.stdin.write(JSON.stringify(obj) + '\n') }

  async stats () { this.send({ cmd: 'stats' }); return this.waitFor('stats', 10000) }

  async stop () {
    if (this.proc.exitCode !== null) return
    this.send({ cmd: 'exit' })
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000)
    await this.exited
    clearTimeout(timer)
  }
}

// all non-loopback counts seen from children that already exited
const guardTotal = { count: 0, samples: [] }
async function stopAll (children) {
  await Promise.all(children.map(async (c) => {
    try {
      if (c.proc.exitCode === null) {
        const s = await c.stats()
        guardTotal.count += s.non_loopback
        guardTotal.samples.push(...s.non_loopback_samples)
      }
    } catch {}
    await c.stop()
  }))
}

// -- baseline: Node net on loopback ---------------------------------------------------------

async function tcpLoopbackRtt (count = 2000, size = 64) {
  const server = net.createServer((sock) => { sock.setNoDelay(true); sock.on('data', (d) => sock.write(d)) })
  await new Promise((resolve) => server.listen(0, LOOPBACK, resolve))
  const client = net.connect(server.address().port, LOOPBACK)
  client.setNoDelay(true)
  await new Promise((resolve) => client.on('connect', resolve))
  const payload = Buffer.alloc(size, 0x78)
  let got = 0
  let wake = null
  client.on('data', (d) => { got += d.length; if (got >= size && wake) { const w = wake; wake = null; w() } })
  const rtts = []
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    const done = new Promise((resolve) => { wake = resolve })
    client.write(payload)
    await done
    got -= size
    rtts.push(performance.now() - t)
  }
  client.destroy()
  server.close()
  return summary(rtts)
}

async function tcpConnectTime (count = 200) {
  const accepted = []
  const server = net.createServer((sock) => { accepted.push(sock) })
  await new Promise((resolve) => server.listen(0, LOOPBACK, 128, resolve))
  const times = []
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    const sock = net.connect(server.address().port, LOOPBACK)
    await new Promise((resolve) => sock.on('connect', resolve))
    times.push(performance.now() - t)
    sock.destroy()
  }
  for (const s of accepted) s.destroy()
  server.close()
  return summary(times)
}

// -- process helpers ----------------------------------------------------------------------------

function rssMib (pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN
}

function cpuSeconds (pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/)
  return (Number(fields[11]) + Number(fields[12])) / 100 // CLK_TCK is 100 on Linux
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function startNetwork (size) {
  const nodes = []
  const addrs = []
  for (let i = 0; i < size; i++) {
    const node = new Child('dht', addrs.slice(-3))
    nodes.push(node)
    const ready = await node.waitFor('ready', 60000)
    addrs.push({ host: ready.host, port: ready.port })
  }
  return { nodes, addrs }
}

// every socket of our children, from `ss -tunap`: local and peer addresses must be loopback
function socketCheck (pids) {
  let out
  try { out = execFileSync('ss', ['-tunap'], { encoding: 'utf8' }) } catch (err) { return { error: String(err) } }
  const ours = out.split('\n').filter((l) => pids.some((pid) => l.includes(`pid=${pid},`)))
  const bad = ours.filter((l) => {
    const cols = l.trim().split(/\s+/)
    const local = cols[4] || ''
    const peer = cols[5] || ''
    const okLocal = local.startsWith('127.')
    const okPeer = peer.startsWith('127.') || peer === '0.0.0.0:*' || peer === '*:*'
    return !(okLocal && okPeer)
  })
  return { sockets: ours.length, non_loopback: bad.length, samples: bad.slice(0, 5) }
}

const freshTopic = () => randomBytes(32).toString('hex')

// -- scenarios -----------------------------------------------------------------------------------

async function matchWaiting (addrs, rounds) {
  const joinToConn = []; const readyToConn = []; const launchToConn = []; const launchToReady = []; const announce = []
  for (let i = 0; i < rounds; i++) {
    const topic = freshTopic()
    const waiting = new Child('peer', [addrs[i % addrs.length]])
    await waiting.waitFor('ready', 30000)
    waiting.send({ cmd: 'join', topic, flush: true })
    announce.push((await waiting.waitFor('announced', 30000)).ms)
    const joiner = new Child('peer', [addrs[(i + 5) % addrs.length]])
    const ready = await joiner.waitFor('ready', 30000)
    joiner.send({ cmd: 'join', topic })
    const conn = await joiner.waitFor('connection', 30000)
    await waiting.waitFor('connection', 30000)
    joinToConn.push(conn.ms)
    readyToConn.push(conn.at - ready.at)
    launchToConn.push(conn.at - joiner.launched)
    launchToReady.push(ready.at - joiner.launched)
    await stopAll([waiting, joiner])
  }
  return {
    ...summary(joinToConn),
    ready_to_connection_parent_clock: summary(readyToConn),
    launch_to_connection: summary(launchToConn),
    launch_to_ready: summary(launchToReady),
    waiting_announce_flushed: summary(announce)
  }
}

async function matchTogether (addrs, rounds) {
  const both = []; const launch = []
  let within3 = 0; let within10 = 0
  for (let i = 0; i < rounds; i++) {
    const topic = freshTopic()
    const a = new Child('peer', [addrs[i % addrs.length]])
    const b = new Child('peer', [addrs[(i + 3) % addrs.length]])
    try {
      await Promise.all([a.waitFor('ready', 30000), b.waitFor('ready', 30000)])
      // the same moment: both join commands written back to back
      const start = performance.now()
      a.send({ cmd: 'join', topic })
      b.send({ cmd: 'join', topic })
      const [ca, cb] = await Promise.all([a.waitFor('connection', 10000), b.waitFor('connection', 10000)])
      const elapsed = Math.max(ca.at, cb.at) - start
      both.push(elapsed)
      launch.push(Math.max(ca.at, cb.at) - Math.min(a.launched, b.launched))
      within10++
      if (elapsed <= 3000) within3++
    } catch {}
    await stopAll([a, b])
  }
  return {
    join_to_both_connected: both.length ? summary(both) : null,
    launch_to_both_connected: launch.length ? summary(launch) : null,
    connected_within_3s_of_join: within3 / rounds,
    connected_within_10s_of_join: within10 / rounds
  }
}

async function chatRoundTrip (addrs, nodes, messages) {
  const topic = freshTopic()
  const a = new Child('peer', [addrs[0]])
  const b = new Child('peer', [addrs[1 % addrs.length]])
  await Promise.all([a.waitFor('ready', 30000), b.waitFor('ready', 30000)])
  a.send({ cmd: 'join', topic, flush: true })
  await a.waitFor('announced', 30000)
  b.send({ cmd: 'join', topic })
  await Promise.all([a.waitFor('connection', 30000), b.waitFor('connection', 30000)])
  await sleep(200) // let a possible duplicate connection settle

  b.send({ cmd: 'rtt', count: messages, size: 64 })
  const inProcess = (await b.waitFor('rtt', 60000)).rtts

  const driven = []
  for (let i = 0; i < messages; i++) {
    const t = performance.now()
    b.send({ cmd: 'send', size: 64 })
    await b.waitFor('delivered', 10000)
    driven.push(performance.now() - t)
  }

  const chunk = 16000
  const count = Math.floor(MIB / chunk) + 1
  b.send({ cmd: 'bulk', count, size: chunk })
  const bulk = (await b.waitFor('bulk', 60000)).ms

  const sa = await a.stats(); const sb = await b.stats()
  const sockets = socketCheck([...nodes, a, b].map((c) => c.proc.pid))
  const result = {
    rtt: summary(inProcess),
    rtt_driven_over_stdio: summary(driven),
    mib_transfer_seconds: bulk / 1000,
    rss_mib_per_peer_process: mean([sa.rss, sb.rss]) / MIB,
    socket_check: sockets
  }
  await stopAll([a, b])
  return result
}

async function idleCpu (child, seconds = 20) {
  const before = cpuSeconds(child.proc.pid)
  await sleep(seconds * 1000)
  return 100 * (cpuSeconds(child.proc.pid) - before) / seconds
}

function parseArgs (argv) {
  const args = { nodes: 10, rounds: 10, messages: 200, quick: false, matchOnly: false, role: null, bootstrap: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') args.quick = true
    else if (a === '--match-only') args.matchOnly = true
    else if (a === '--nodes') args.nodes = Number(argv[++i])
    else if (a === '--rounds') args.rounds = Number(argv[++i])
    else if (a === '--messages') args.messages = Number(argv[++i])
    else if (a === '--role') args.role = argv[++i]
    else if (a === '--bootstrap') args.bootstrap = JSON.parse(argv[++i])
    else if (a === '--host') args.host = argv[++i]
    else throw new Error(`unknown argument ${a}`)
  }
  if (args.quick) { args.rounds = 3; args.messages = 50 }
  return args
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  if (args.host) {
    if (!/^10\.201\.\d+\.\d+$/.test(args.host)) throw new Error(`--host must be a delay-router lab address (10.201.x.x): ${args.host}`)
    BIND = args.host
    LAB_PREFIX = '10.201.'
  }
  if (args.role === 'dht') return dhtNodeMain(args.bootstrap)
  if (args.role === 'peer') return peerMain(args.bootstrap)

  const versions = {
    node: process.versions.node,
    hyperswarm: require('hyperswarm/package.json').version,
    hyperdht: require('hyperdht/package.json').version
  }
  const result = {
    versions,
    baseline: { tcp_loopback_rtt: await tcpLoopbackRtt(), tcp_connect: await tcpConnectTime() }
  }
  const baseRtt = result.baseline.tcp_loopback_rtt.median

  const { nodes, addrs } = await startNetwork(args.nodes)
  const entry = { dht_processes: nodes.length }
  try {
    entry.match_waiting = await matchWaiting(addrs, args.rounds)
    if (!args.matchOnly) entry.match_together = await matchTogether(addrs, args.rounds)
    entry.chat = await chatRoundTrip(addrs, nodes, args.messages)
    entry.rss_mib_per_dht_process = mean(nodes.map((n) => rssMib(n.proc.pid)))
    if (!args.matchOnly) entry.idle_cpu_percent_of_a_core = await idleCpu(nodes[nodes.length - 1])
    const tables = await Promise.all(nodes.map((n) => n.stats()))
    entry.dht_routing_table_sizes = tables.map((s) => s.table_size)
  } finally {
    await stopAll(nodes)
  }
  result[`network_${args.nodes}`] = entry
  result.non_loopback_destinations = guardTotal.count
  result.non_loopback_samples = guardTotal.samples.slice(0, 5)

  console.log(JSON.stringify(result, null, 2))

  const ms = 1000
  const w = entry.match_waiting; const t = entry.match_together; const c = entry.chat
  const f = (x, d = 0) => (x * ms).toFixed(d)
  const lines = [
    '',
    `Hyperswarm ${versions.hyperswarm} / HyperDHT ${versions.hyperdht} on Node ${versions.node}, ${args.nodes} DHT processes on loopback`,
    `raw TCP loopback RTT (Node net, 64 B) median: ${f(baseRtt, 3)} ms; TCP connect median ${f(result.baseline.tcp_connect.median, 3)} ms`,
    `connect to a waiting peer (join -> 'connection'): median ${f(w.median)} ms, p90 ${f(w.p90)} ms (${(w.median / baseRtt).toFixed(0)}x TCP RTT); ` +
      `launch->ready median ${w.launch_to_ready.median.toFixed(2)} s, launch->connection median ${w.launch_to_connection.median.toFixed(2)} s`,
    t ? `both join at the same moment: connected within 3 s ${(t.connected_within_3s_of_join * 100).toFixed(0)}%, within 10 s ${(t.connected_within_10s_of_join * 100).toFixed(0)}%` +
      (t.join_to_both_connected ? `; join->both connected median ${f(t.join_to_both_connected.median)} ms` : '') : 'both join at the same moment: skipped (--match-only)',
    `message RTT (in-process echo, 64 B): median ${f(c.rtt.median, 3)} ms (${(c.rtt.median / baseRtt).toFixed(1)}x TCP), p99 ${f(c.rtt.p99, 3)} ms; ` +
      `driven over stdio like strangers: median ${f(c.rtt_driven_over_stdio.median, 3)} ms (${(c.rtt_driven_over_stdio.median / baseRtt).toFixed(1)}x TCP), p99 ${f(c.rtt_driven_over_stdio.p99, 3)} ms`,
    `1 MiB in 16 kB messages ${c.mib_transfer_seconds.toFixed(3)} s; RSS peer ${c.rss_mib_per_peer_process.toFixed(0)} MiB, DHT node ${entry.rss_mib_per_dht_process.toFixed(0)} MiB; ` +
      (entry.idle_cpu_percent_of_a_core === undefined ? 'idle CPU skipped (--match-only)' : `idle CPU of a DHT node ${entry.idle_cpu_percent_of_a_core.toFixed(2)}% of a core`),
    `non-loopback destinations: ${result.non_loopback_destinations} (guard), ${c.socket_check.non_loopback} of ${c.socket_check.sockets} sockets (ss)`
  ]
  process.stderr.write(lines.join('\n') + '\n')
  process.exit(0)
}

main().catch((err) => { console.error(err); process.exit(1) })
