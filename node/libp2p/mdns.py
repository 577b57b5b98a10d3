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
LISTENER_POLL = 0.5
MAX_LOCAL_PEERS = 1024


class LocalDiscovery:
    """Connects to peers that mDNS reports and adds them to the DHT."""

    def __init__(self, host, dht) -> None:
        self.host = host
        self.dht = dht
        self.found = 0
        self._joined: set = set()

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
                nursery.start_soon(self._watch_listener, send.clone())
                async for info in receive:
                    if info.peer_id not in self._joined and len(self._joined) < MAX_LOCAL_PEERS:
                        self._joined.add(info.peer_id)
                        nursery.start_soon(self._join, info)
        finally:
            peerDiscovery.unregister_peer_discovered_handler(on_peer)

    async def _watch_listener(self, send: trio.MemorySendChannel[PeerInfo]) -> None:
        """Also read what the mDNS listener recorded.

        py-libp2p's listener reports a peer through the callback only when
        zeroconf calls ``add_service``; a peer first seen through
        ``update_service`` lands in the peerstore silently. Its
        ``discovered_services`` holds both, so we read it too.
        """
        mdns = getattr(self.host, "mDNS", None)
        listener = getattr(mdns, "listener", None)
        if listener is None:
            return
        store = self.host.get_peerstore()
        while True:
            for peer_id, _seen in list(listener.discovered_services.values()):
                if peer_id not in self._joined:
                    try:
                        addrs = store.addrs(peer_id)
                    except Exception:  # no addresses (yet)
                        continue
                    try:
                        send.send_nowait(PeerInfo(peer_id, addrs))
                    except trio.WouldBlock:
                        break
            await trio.sleep(LISTENER_POLL)

    async def _join(self, info: PeerInfo) -> None:
        if info.peer_id in self.host.get_connected_peers():
            return
        with trio.move_on_after(CONNECT_TIMEOUT):
            try:
                await self.host.connect(info)
            except Exception as exc:  # unreachable address announced
                logger.info("mDNS peer %s unreachable: %r", info.peer_id, exc)
                self._joined.discard(info.peer_id)  # it may announce a better address
                return
            self.found += 1
            logger.info("mDNS peer %s connected", info.peer_id)
            await self.dht.refresh()
