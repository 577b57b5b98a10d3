"""Canaries for ``strangers.node.libp2p.mdns``: the discovery callback and the listener.

LocalDiscovery registers a handler on py-libp2p's process-wide
``peerDiscovery`` and also polls the mDNS listener's ``discovered_services``,
because the listener calls the handler only from ``add_service``, not from
``update_service``. These tests drive the library's listener methods with a
stand-in ``self`` (no zeroconf, no network).
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.discovery.mdns.listener import PeerListener
from libp2p.discovery.mdns.mdns import MDNSDiscovery
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host

from canary import changed, parameters_of

SERVICE = "_p2p._udp.local."


class FakePeerstore:
    def __init__(self) -> None:
        self.addrs: dict[ID, list[Multiaddr]] = {}

    def add_addrs(self, peer_id: ID, addrs: list[Multiaddr], ttl: int) -> None:
        self.addrs.setdefault(peer_id, []).extend(addrs)

    def clear_addrs(self, peer_id: ID) -> None:
        self.addrs.pop(peer_id, None)


def _listener(info: PeerInfo) -> SimpleNamespace:
    """A stand-in ``self`` for PeerListener's methods: what they read, nothing else."""
    return SimpleNamespace(
        service_name="me." + SERVICE,
        discovered_services={},
        meta_query_services={},
        peerstore=FakePeerstore(),
        ttl=120,
        _get_service_info_with_retry=lambda zc, type_, name: object(),
        _extract_peer_info=lambda service_info: info,
        _handle_meta_query=lambda name: None,
    )


def _info() -> PeerInfo:
    return PeerInfo(ID(hashlib.sha256(b"neighbour").digest()), [Multiaddr("/ip4/192.168.1.7/tcp/4001")])


def test_the_process_wide_discovery_callback_is_still_there() -> None:
    for name in ("register_peer_discovered_handler", "unregister_peer_discovered_handler", "emit_peer_discovered"):
        assert callable(getattr(peerDiscovery, name, None)), changed("LocalDiscovery", f"peerDiscovery.{name} is gone")
    seen: list[PeerInfo] = []
    peerDiscovery.register_peer_discovered_handler(seen.append)
    try:
        peerDiscovery.emit_peer_discovered(_info())
    finally:
        peerDiscovery.unregister_peer_discovered_handler(seen.append)
    peerDiscovery.emit_peer_discovered(_info())
    assert [info.peer_id for info in seen] == [_info().peer_id], changed(
        "LocalDiscovery", "register/unregister_peer_discovered_handler no longer add and remove a callback"
    )


def test_add_service_reports_the_peer_and_records_it() -> None:
    info = _info()
    fake = _listener(info)
    seen: list[PeerInfo] = []
    peerDiscovery.register_peer_discovered_handler(seen.append)
    try:
        PeerListener.add_service(fake, None, SERVICE, "peer." + SERVICE)  # type: ignore[arg-type]
    finally:
        peerDiscovery.unregister_peer_discovered_handler(seen.append)
    assert [i.peer_id for i in seen] == [info.peer_id], changed("LocalDiscovery", "add_service no longer reports peers")
    peer_id, seen_at = fake.discovered_services["peer." + SERVICE]
    assert peer_id == info.peer_id and isinstance(seen_at, float), changed(
        "LocalDiscovery._watch_listener", "discovered_services values are no longer (peer id, time)"
    )


def test_update_service_still_records_the_peer_without_reporting_it() -> None:
    """The bug _watch_listener works around. If the callback fires now, the polling may go."""
    info = _info()
    fake = _listener(info)
    seen: list[PeerInfo] = []
    peerDiscovery.register_peer_discovered_handler(seen.append)
    try:
        PeerListener.update_service(fake, None, SERVICE, "peer." + SERVICE)  # type: ignore[arg-type]
    finally:
        peerDiscovery.unregister_peer_discovered_handler(seen.append)
    assert fake.discovered_services["peer." + SERVICE][0] == info.peer_id, changed(
        "LocalDiscovery._watch_listener", "update_service no longer records the peer in discovered_services"
    )
    assert fake.peerstore.addrs[info.peer_id] == info.addrs
    assert seen == [], changed(
        "LocalDiscovery._watch_listener", "update_service now reports the peer through the callback: "
        "polling discovered_services is no longer needed"
    )


def test_the_host_exposes_its_mdns_listener() -> None:
    """_watch_listener reads host.mDNS.listener (made by the service's constructor)."""
    assert "listener" in MDNSDiscovery.__init__.__code__.co_names, changed(
        "LocalDiscovery._watch_listener", "MDNSDiscovery no longer creates self.listener"
    )
    assert parameters_of(PeerListener.update_service) == ["self", "zc", "type_", "name"]
    host = build_host(fresh_identity(), mdns=False)
    assert getattr(host, "mDNS", "missing") is None, changed(
        "LocalDiscovery._watch_listener", "a host without mDNS no longer has host.mDNS = None"
    )
