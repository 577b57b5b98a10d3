// A js-libp2p GossipSub node in a strangers lobby, written from docs/protocol.md §10.
// usage: node lobby.mjs TOPIC   (JSON lines: commands on stdin, events on stdout)
//   {"cmd": "dial", "addr": "/ip4/127.0.0.1/tcp/PORT/p2p/ID"}
//   {"cmd": "publish", "text": "..."}
//   {"cmd": "quit"}
// events: {"event": "ready", "peer_id", "addrs"}, {"event": "subscribed", "peer_id"},
//         {"event": "message", "from", "text"}, {"event": "published", "text", "recipients"},
//         {"event": "error", "message"}
await import('../node20.mjs') // Promise.withResolvers on Node 20, before libp2p

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { gossipsub } = await import('@libp2p/gossipsub')
const { multiaddr } = await import('@multiformats/multiaddr')
const readline = await import('node:readline')

const topic = process.argv[2]
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({ globalSignaturePolicy: 'StrictSign', emitSelf: false, allowPublishToZeroTopicPeers: true, D: 3, Dlo: 2, Dhi: 5 })
  }
})
const pubsub = node.services.pubsub
pubsub.subscribe(topic)
pubsub.addEventListener('message', (evt) => {
  const msg = evt.detail
  if (msg.topic !== topic) return
  let text = null
  try {
    const obj = JSON.parse(new TextDecoder().decode(msg.data))
    if (obj.v === 1 && typeof obj.text === 'string') text = obj.text
  } catch (e) { /* not a lobby message: ignored */ }
  if (text !== null) say({ event: 'message', from: msg.from?.toString(), text })
})
pubsub.addEventListener('subscription-change', (evt) => {
  for (const sub of evt.detail.subscriptions) {
    if (sub.topic === topic && sub.subscribe) say({ event: 'subscribed', peer_id: evt.detail.peerId.toString() })
  }
})
await node.start()
say({ event: 'ready', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  if (!line.trim()) continue
  let cmd
  try { cmd = JSON.parse(line) } catch (e) { say({ event: 'error', message: 'not JSON' }); continue }
  try {
    if (cmd.cmd === 'dial') {
      await node.dial(multiaddr(cmd.addr))
      say({ event: 'dialled', addr: cmd.addr })
    } else if (cmd.cmd === 'publish') {
      const data = new TextEncoder().encode(JSON.stringify({ v: 1, text: cmd.text }))
      const result = await pubsub.publish(topic, data)
      say({ event: 'published', text: cmd.text, recipients: result.recipients.length })
    } else if (cmd.cmd === 'quit') {
      break
    }
  } catch (e) {
    say({ event: 'error', message: String(e?.message ?? e) })
  }
}
await node.stop()
process.exit(0)
