"""Announcements without a network: extra addresses, relayed-only mode, per-recipient lists."""

from __future__ import annotations

from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import announcements
from strangers.node.libp2p.host import build_host


def _book():
    host = build_host(fresh_identity())
    book = announcements(host)
    host.get_transport_addrs = lambda: [Multiaddr("/ip4/0.0.0.0/tcp/4001")]  # type: ignore[method-assign]
    return host, book


def test_a_wildcard_becomes_interfaces_and_loopback_never_itself():
    _host, book = _book()
    everything = [str(a) for a in book.all()]
    assert "/ip4/127.0.0.1/tcp/4001" in everything and "/ip4/0.0.0.0/tcp/4001" not in everything


def test_added_addresses_are_announced_to_whoever_may_see_them_and_can_be_taken_back():
    host, book = _book()
    relay = fresh_identity().peer_id
    relayed = Multiaddr(f"/ip4/1.2.3.4/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{host.get_id()}")
    book.add(Multiaddr("/ip4/5.6.7.8/tcp/4001"))
    book.add(relayed)
    book.add(Multiaddr("/ip4/0.0.0.0/tcp/9"))  # never
    stripped = f"/ip4/1.2.3.4/tcp/4001/p2p/{relay}/p2p-circuit"
    public = [str(a) for a in book.for_remote("8.8.8.8")]
    assert "/ip4/5.6.7.8/tcp/4001" in public and stripped in public
    assert not any("/127." in a or "/0.0.0.0/" in a for a in public)
    assert stripped in [str(a).split(f"/p2p/{host.get_id()}")[0] for a in host.get_addrs()]
    assert stripped not in [str(a) for a in book.for_local_link()]  # mDNS: direct addresses only
    book.discard(relayed)
    assert stripped not in [str(a) for a in book.for_remote("8.8.8.8")]


def test_relayed_only_announces_nothing_but_relayed_addresses():
    host, book = _book()
    relay = fresh_identity().peer_id
    book.add(Multiaddr("/ip4/5.6.7.8/tcp/4001"))
    book.add(Multiaddr(f"/ip4/1.2.3.4/tcp/4001/p2p/{relay}/p2p-circuit"))
    book.relayed_only = True
    only = [f"/ip4/1.2.3.4/tcp/4001/p2p/{relay}/p2p-circuit"]
    assert [str(a) for a in book.all()] == only
    assert [str(a) for a in book.for_remote("127.0.0.1")] == only  # not even loopback
    assert book.for_local_link() == []  # no mDNS record at all
    assert [str(a).rsplit("/p2p/", 1)[0] for a in host.get_addrs()] == only
