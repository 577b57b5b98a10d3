// A js-libp2p node that speaks only the public DHT's protocol (/ipfs/kad/1.0.0, server
// mode), plus identify and ping: the foreign bootstrap peer of tests/e2e/test_foreign_kad.py.
//
// Usage: node peer.mjs            listens on 127.0.0.1 (a free TCP port)
// Prints one JSON line on stdout once listening: {"peer": "<id>", "addrs": ["/ip4/.../p2p/<id>"]},
// then one line per DHT peer it adds ({"added": "<id>"}); stops when stdin closes or on SIGTERM.

await import('../node20.mjs') // Promise.withResolvers on Node 20, before libp2p

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      protocol: '/ipfs/kad/1.0.0',
      clientMode: false,
      // loopback addresses are all this test network has: keep them
      peerInfoMapper: passthroughMapper,
      allowQueryWithZeroPeers: true
    })
  }
})

node.services.dht.routingTable.addEventListener('peer:add', (event) => {
  process.stdout.write(JSON.stringify({ added: event.detail.toString() }) + '\n')
})

await node.start()
process.stdout.write(JSON.stringify({
  peer: node.peerId.toString(),
  addrs: node.getMultiaddrs().map((addr) => addr.toString()),
  protocols: node.getProtocols()
}) + '\n')

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await node.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
