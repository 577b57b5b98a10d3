"""Strangers on the same machine or LAN find each other with no bootstrap (mDNS).

py-libp2p's mDNS service (zeroconf) announces the host and reports peers it
hears about through a process-wide callback, from zeroconf's own thread.
:class:`LocalDiscovery` moves those reports into trio (bounded queue), dials
each new peer and walks the DHT through it, so the two nodes form a DHT of
their own and the usual provider lookups find each other.
"""

from __future__ import annotations

import logging

import trio
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.peer.peerinfo import PeerInfo

logger = logging.getLogger(__name__)

QUEUE = 64
CONNECT_TIMEOUT = 3.0


class LocalDiscovery:
    """Connects to peers that mDNS reports and adds them to the DHT."""

    def __init__(self, host, dht) -> None:
        self.host = host
        self.dht = dht
        self.found = 0

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[PeerInfo](QUEUE)
        token = trio.lowlevel.current_trio_token()
        local_id = self.host.get_id()

        def deliver(info: PeerInfo) -> None:
            try:
                send.send_nowait(info)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass  # a burst of announcements: the next one will do

        def on_peer(info: PeerInfo) -> None:  # zeroconf's thread
            if info.peer_id == local_id:
                return
            try:
                token.run_sync_soon(deliver, info)
            except trio.RunFinishedError:
                pass

        peerDiscovery.register_peer_discovered_handler(on_peer)
        try:
            task_status.started()
            async with trio.open_nursery() as nursery:
                async for info in receive:
                    nursery.start_soon(self._join, info)
        finally:
            peerDiscovery.unregister_peer_discovered_handler(on_peer)

    async def _join(self, info: PeerInfo) -> None:
        if info.peer_id in self.host.get_connected_peers():
            return
        with trio.move_on_after(CONNECT_TIMEOUT):
            try:
                await self.host.connect(info)
            except Exception as exc:  # unreachable address announced
                logger.info("mDNS peer %s unreachable: %r", info.peer_id, exc)
                return
            self.found += 1
            logger.info("mDNS peer %s connected", info.peer_id)
            await self.dht.refresh()
