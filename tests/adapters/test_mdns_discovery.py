"""LocalDiscovery without a network: our record, and what it does with a neighbour's.

A real (not running) host and zeroconf's real DNSCache; no socket is opened.
The mDNS round trip between two machines is ``tests/e2e/test_lan.py``.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

from multiaddr import Multiaddr
from zeroconf import DNSCache, DNSText
from zeroconf.const import _CLASS_IN, _TYPE_TXT

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import announcements
from strangers.node.libp2p.host import build_host
from strangers.node.libp2p.mdns import LocalDiscovery
from strangers.node.libp2p.mdns_records import SERVICE, encode_txt, parse_records


class FakeTable:
    def __init__(self) -> None:
        self.listed: list = []

    async def add_peer(self, peer, *, skip_server_mode_check: bool = False) -> bool:
        assert skip_server_mode_check
        self.listed.append(peer)
        return True


def _discovery():
    host = build_host(fresh_identity())
    book = announcements(host)
    dials: list = []

    async def connect(info) -> None:
        dials.append(info)

    host.connect = connect  # type: ignore[method-assign]
    dht = SimpleNamespace(routing_table=FakeTable())
    return host, book, dht, dials, LocalDiscovery(host, dht, book, rng=random.Random(1))


async def test_a_neighbours_records_are_all_read_filtered_and_listed_without_a_dial() -> None:
    host, _book, dht, dials, discovery = _discovery()
    wakes: list[int] = []
    discovery.on_listed = lambda: wakes.append(1)
    neighbour = fresh_identity().peer_id.to_base58()
    name = "neighbour0123456789abcdefghijklmnopq." + SERVICE
    cache = DNSCache()
    def txt(*ips: str) -> DNSText:
        strings = [f"dnsaddr=/ip4/{ip}/tcp/4001/p2p/{neighbour}".encode() for ip in ips]
        return DNSText(name, _TYPE_TXT, _CLASS_IN, 120, encode_txt(strings))

    # one record per address (js-libp2p), several strings in one (go-libp2p), a wildcard
    cache.async_add_records([txt("10.1.0.7"), txt("0.0.0.0", "10.1.0.8")])
    zc = SimpleNamespace(cache=cache)
    await discovery._read(zc, name)  # type: ignore[arg-type]
    peer = dht.routing_table.listed[0]
    assert peer.to_base58() == neighbour and discovery.found == 1
    known = sorted(str(a) for a in host.get_peerstore().addrs(peer))
    assert known == ["/ip4/10.1.0.7/tcp/4001", "/ip4/10.1.0.8/tcp/4001"]
    assert dials == []
    await discovery._read(zc, name)  # heard again: listed once
    assert len(dht.routing_table.listed) == 1 and discovery.heard == 2
    assert wakes == [1]  # the search was told once: it looks again at once


async def test_our_own_record_is_ignored() -> None:
    host, _book, dht, _dials, discovery = _discovery()
    me = host.get_id().to_base58()
    cache = DNSCache()
    cache.async_add_records([DNSText(discovery.name, _TYPE_TXT, _CLASS_IN, 120,
                                     encode_txt([f"dnsaddr=/ip4/10.1.0.9/tcp/1/p2p/{me}".encode()]))])
    await discovery._read(SimpleNamespace(cache=cache), discovery.name)  # type: ignore[arg-type]
    assert dht.routing_table.listed == [] and discovery.heard == 0


def test_our_record_has_a_dnsaddr_per_address_with_our_id_and_no_wildcard() -> None:
    host, book, _dht, _dials, discovery = _discovery()
    host.get_transport_addrs = lambda: [Multiaddr("/ip4/0.0.0.0/tcp/4001"), Multiaddr("/ip4/10.1.0.9/tcp/4002")]
    info = discovery._service_info()
    assert info is not None and info.name == discovery.name and info.type == SERVICE
    found = parse_records([info.text])
    addrs = found[host.get_id().to_base58()]
    assert "/ip4/10.1.0.9/tcp/4002" in addrs
    assert not any("0.0.0.0" in a or "/127." in a for a in addrs), addrs
    assert 32 <= len(discovery.name.split(".")[0]) <= 63
