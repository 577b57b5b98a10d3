// js-libp2p calls Promise.withResolvers (Node 22+): defined here for Node 20.
// Every js peer of the tests imports this file before libp2p.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
