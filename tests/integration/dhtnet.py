"""Real py-libp2p hosts with our DHT on 127.0.0.1 (integration test helper).

Each peer runs in its own task (started with ``nursery.start``), so a test can
stop one peer in the middle of the network by cancelling its scope.
"""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, quiet_library_logs
from strangers.node.libp2p.kad import KAD_PROTOCOL, StrangersDHT

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
JOINING_AT_ONCE = 8


@dataclass
class Peer:
    host: object
    dht: StrangersDHT
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def id(self):
        return self.host.get_id()

    async def stop(self) -> None:
        self.scope.cancel()
        await self.stopped.wait()


async def serve_peer(*, mode=None, protocol=KAD_PROTOCOL,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    """One DHT node on loopback (``mode``: a ``DHTMode``, server by default;
    ``protocol``: our own DHT's id by default, or the public one's)."""
    host = build_host(fresh_identity())
    scope = trio.CancelScope()
    try:
        with scope:
            async with host.run([LOOPBACK]):
                dht = (StrangersDHT(host, protocol=protocol) if mode is None
                       else StrangersDHT(host, mode, protocol=protocol))
                async with background_trio_service(dht):
                    peer = Peer(host, dht, scope)
                    task_status.started(peer)
                    await trio.sleep_forever()
    finally:
        if "peer" in locals():
            peer.stopped.set()


@asynccontextmanager
async def dht_network(size: int, *, protocol=KAD_PROTOCOL):
    """``size`` DHT nodes, all bootstrapped through the first one (``protocol``:
    ``PUBLIC_KAD_PROTOCOL`` stands in for the public libp2p DHT)."""
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        peers: list[Peer] = [await nursery.start(functools.partial(serve_peer, protocol=protocol))
                             for _ in range(size)]
        seed = info_from_p2p_addr(peers[0].host.get_addrs()[0])
        # A hang guard, not a speed claim: 30 nodes in one process bootstrap in
        # ~10 s on an idle 2-core machine, and took over 30 s with the other
        # core busy.
        with trio.fail_after(120):
            # a few at a time, as nodes that start at different moments: all at
            # once, the seed answers ~30 joiners with one share of one core,
            # requests time out and the joiners start over (a one-process artefact)
            joining = trio.CapacityLimiter(JOINING_AT_ONCE)

            async def join(peer: Peer) -> None:
                async with joining:
                    await peer.dht.bootstrap([seed])

            async with trio.open_nursery() as boot:
                for peer in peers[1:]:
                    boot.start_soon(join, peer)
        try:
            yield peers
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def lone_peer():
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        peer = await nursery.start(serve_peer)
        try:
            yield peer
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def connected_pair():
    """Two DHT nodes, the second connected to the first (no table-filling walks)."""
    quiet_library_logs()
    async with trio.open_nursery() as nursery:
        a = await nursery.start(serve_peer)
        b = await nursery.start(serve_peer)
        with trio.fail_after(10):
            await b.host.connect(info_from_p2p_addr(a.host.get_addrs()[0]))
        try:
            yield b, a
        finally:
            nursery.cancel_scope.cancel()


async def next_event(node, kind, timeout=15):
    """The next event of type ``kind`` from a whole node (``open_node``)."""
    with trio.fail_after(timeout):
        async for event in node.events():
            if isinstance(event, kind):
                return event
    raise AssertionError("event stream ended")
