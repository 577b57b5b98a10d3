// A js-libp2p node (TCP, Noise, Yamux, identify) for tests/adapters/test_foreign_round_trips.py:
// does our optimistic multistream-select work against js-libp2p, both ways?
//
// Usage: node peer.mjs      listens on 127.0.0.1 (a free TCP port) and answers
//                           /strangers/echo/1.0.0 (every byte sent back, until the stream ends).
// Prints one JSON line once listening: {"peer": "<id>", "addrs": [...], "protocols": [...]}.
// Then reads one JSON command per line on stdin:
//   {"dial": "<multiaddr with /p2p/>", "protocol": "<id>", "payload": "<hex>"}
// opens a stream (a new connection if needed), writes the payload, reads as many bytes back,
// and prints {"echo": "<hex>"} or {"error": "<message>"}. Stops when stdin closes or on SIGTERM.

await import('../node20.mjs') // Promise.withResolvers on Node 20, before libp2p

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { multiaddr } = await import('@multiformats/multiaddr')
const readline = await import('node:readline')

const ECHO = '/strangers/echo/1.0.0'

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() }
})

await node.handle(ECHO, async (stream) => {
  try {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      if (!stream.send(bytes)) await stream.onDrain()
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
})

await node.start()
process.stdout.write(JSON.stringify({
  peer: node.peerId.toString(),
  addrs: node.getMultiaddrs().map((addr) => addr.toString()),
  protocols: node.getProtocols()
}) + '\n')

async function echo (command) {
  const payload = Buffer.from(command.payload, 'hex')
  const stream = await node.dialProtocol(multiaddr(command.dial), command.protocol,
    { signal: AbortSignal.timeout(10000) })
  stream.send(payload)
  const parts = []
  let got = 0
  for await (const chunk of stream) {
    const bytes = chunk.subarray()
    parts.push(Buffer.from(bytes))
    got += bytes.length
    if (got >= payload.length) break
  }
  await stream.close()
  return Buffer.concat(parts).toString('hex')
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  let reply
  try {
    reply = { echo: await echo(JSON.parse(line)) }
  } catch (err) {
    reply = { error: String(err && err.message ? err.message : err) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
})

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await node.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
lines.on('close', stop)
