"""The provider store of our DHT servers: presence TTL, bounds per key and in all."""

from __future__ import annotations

import hashlib

from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import kad
from strangers.node.libp2p.host import build_host


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _peer(n: int) -> PeerInfo:
    return PeerInfo(ID(hashlib.sha256(n.to_bytes(4, "big")).digest()),
                    [Multiaddr(f"/ip4/127.0.0.1/tcp/{1000 + n}")])


def _store(clock: Clock, **kwargs) -> kad.NewestProviderStore:
    dht = kad.StrangersDHT(build_host(fresh_identity()))
    return kad.NewestProviderStore(host=dht.host, peer_routing=dht.peer_routing, clock=clock, **kwargs)


def test_records_expire_after_the_presence_ttl_not_48_hours() -> None:
    clock = Clock()
    store = _store(clock)
    assert store.ttl == kad.PRESENCE_TTL == 600
    store.add_provider(b"key", _peer(1))
    clock.now += 300
    store.add_provider(b"key", _peer(2))
    clock.now += kad.PRESENCE_TTL - 300 - 1
    assert len(store.get_providers(b"key")) == 2
    clock.now += 1
    assert [info.peer_id for info in store.get_providers(b"key")] == [_peer(2).peer_id]
    clock.now += 300
    store.cleanup_expired()
    assert store.providers == {} and store.size() == 0


def test_a_repeated_announcement_renews_its_record() -> None:
    clock = Clock()
    store = _store(clock)
    store.add_provider(b"key", _peer(1))
    clock.now += 500
    store.add_provider(b"key", _peer(1))
    clock.now += 500
    assert [info.peer_id for info in store.get_providers(b"key")] == [_peer(1).peer_id]
    assert store.size() == 1


def test_the_store_is_bounded_in_all_and_drops_the_oldest_first() -> None:
    clock = Clock()
    store = _store(clock, max_total=50)
    for n in range(80):
        clock.now += 1
        store.add_provider(n.to_bytes(2, "big"), _peer(n))
    assert store.size() == 50 == sum(len(records) for records in store.providers.values())
    assert store.get_providers((0).to_bytes(2, "big")) == []
    assert [info.peer_id for info in store.get_providers((79).to_bytes(2, "big"))] == [_peer(79).peer_id]
    # per key as well
    for n in range(kad.MAX_RECORDS_PER_KEY + 10):
        clock.now += 1
        store.add_provider(b"hot", _peer(1000 + n))
    assert len(store.providers[b"hot"]) <= kad.MAX_RECORDS_PER_KEY


def test_a_record_without_a_peer_is_ignored() -> None:
    store = _store(Clock())
    store.add_provider(b"key", None)  # type: ignore[arg-type]
    assert store.size() == 0


def test_can_dial_keeps_tcp_and_relayed_addresses_only() -> None:
    good = ["/ip4/1.2.3.4/tcp/4001", "/ip6/2001:db8::1/tcp/4001", "/dns4/example.org/tcp/4001",
            "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWE2jLFtGE9NRHpx6W67LF7oyCo4CJ3cpUaBsdN5K8VLui/p2p-circuit"]
    bad = ["/ip4/1.2.3.4/udp/4001/quic-v1", "/ip4/1.2.3.4/tcp/4001/ws", "/ip4/0.0.0.0/tcp/4001",
           "/dnsaddr/bootstrap.libp2p.io", "/ip4/1.2.3.4/tcp/0", "/ip4/224.0.0.1/tcp/1",
           "/ip4/1.2.3.4/udp/4001/webrtc-direct"]
    assert all(kad.can_dial(Multiaddr(addr)) for addr in good)
    assert not any(kad.can_dial(Multiaddr(addr)) for addr in bad)
