"""LocalDiscovery without a network: our record, and what it does with a neighbour's.

A real (not running) host and zeroconf's real DNSCache; no socket is opened.
The mDNS round trip between two machines is ``tests/e2e/test_lan.py``.
"""

from __future__ import annotations

import logging
import random
from types import SimpleNamespace

import trio
import trio.testing
from libp2p.peer.id import ID
from multiaddr import Multiaddr
from zeroconf import DNSCache, DNSText
from zeroconf.const import _CLASS_IN, _TYPE_TXT

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import announcements
from strangers.node.libp2p.host import build_host
from strangers.node.libp2p.mdns import DIAL_GRACE, WATCH_INTERVAL, LocalDiscovery
from strangers.node.libp2p.mdns_records import SERVICE, encode_txt, parse_records


class FakeDHT:
    """What LocalDiscovery uses of StrangersDHT: identify's verdict and admission."""

    def __init__(self) -> None:
        self.listed: list = []
        self.serves: dict = {}
        """peer -> whether identify lists our DHT protocol (absent: not identified yet)."""
        self.routing_table = self

    def advertises(self, peer):
        return self.serves.get(peer)

    async def add_peer(self, peer) -> bool:
        if self.advertises(peer) is not True:  # StrangersDHT.add_peer's rule
            return False
        if peer not in self.listed:
            self.listed.append(peer)
        return True

    def peer_in_table(self, peer) -> bool:
        return peer in self.listed


def _discovery(*, neighbour_serves: bool | None = True):
    """A discovery whose host's dials "succeed" and bring identify's verdict on the neighbour."""
    host = build_host(fresh_identity())
    book = announcements(host)
    dht = FakeDHT()
    dials: list = []

    async def connect(info) -> None:
        dials.append(info)
        dht.serves[info.peer_id] = neighbour_serves

    host.connect = connect  # type: ignore[method-assign]
    return host, book, dht, dials, LocalDiscovery(host, dht, book, rng=random.Random(1))


def _neighbour_records(*ips: str):
    neighbour = fresh_identity().peer_id.to_base58()
    name = "neighbour0123456789abcdefghijklmnopq." + SERVICE
    cache = DNSCache()

    def txt(*ips: str) -> DNSText:
        strings = [f"dnsaddr=/ip4/{ip}/tcp/4001/p2p/{neighbour}".encode() for ip in ips]
        return DNSText(name, _TYPE_TXT, _CLASS_IN, 120, encode_txt(strings))

    # one record per address (js-libp2p), several strings in one (go-libp2p), a wildcard
    cache.async_add_records([txt("10.1.0.7"), txt("0.0.0.0", "10.1.0.8")])
    return neighbour, name, SimpleNamespace(cache=cache)


async def test_a_serving_neighbour_is_read_filtered_met_once_and_listed(autojump_clock) -> None:
    host, _book, dht, dials, discovery = _discovery(neighbour_serves=True)
    wakes: list[int] = []
    discovery.on_listed = lambda: wakes.append(1)
    neighbour, name, zc = _neighbour_records()
    await discovery._read(zc, name)  # type: ignore[arg-type]
    peer = dht.listed[0]
    assert peer.to_base58() == neighbour and discovery.found == 1
    known = sorted(str(a) for a in host.get_peerstore().addrs(peer))
    assert known == ["/ip4/10.1.0.7/tcp/4001", "/ip4/10.1.0.8/tcp/4001"]
    # one dial (identify needs a connection), to the dialable addresses only
    assert len(dials) == 1 and sorted(str(a) for a in dials[0].addrs) == known
    await discovery._read(zc, name)  # heard again: listed once, not dialled again
    assert len(dht.listed) == 1 and discovery.heard == 2 and len(dials) == 1
    assert wakes == [1]  # the search was told once: it looks again at once


async def test_a_client_neighbour_is_not_listed_until_identify_says_it_serves(autojump_clock) -> None:
    _host, _book, dht, dials, discovery = _discovery(neighbour_serves=False)
    wakes: list[int] = []
    discovery.on_listed = lambda: wakes.append(1)
    _neighbour, name, zc = _neighbour_records()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(discovery._watch)
        await discovery._read(zc, name)  # type: ignore[arg-type]
        await trio.sleep(60)
        assert dht.listed == [] and discovery.found == 0 and wakes == [] and len(dials) == 1
        peer = dials[0].peer_id
        dht.serves[peer] = True  # an identify push: AutoNAT found it reachable, it serves now
        await trio.sleep(WATCH_INTERVAL * 2)
        assert dht.listed == [peer] and discovery.found == 1 and wakes == [1]
        nursery.cancel_scope.cancel()


async def test_a_client_is_listed_the_moment_an_identify_push_says_it_serves(autojump_clock) -> None:
    """Not at the watch's next look: on a LAN with no bootstrap that look cost a second
    between two strangers and their match (the waiting one serves once AutoNAT says so)."""
    host, _book, dht, dials, discovery = _discovery(neighbour_serves=False)
    _neighbour, name, zc = _neighbour_records()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(discovery._watch)
        await discovery._read(zc, name)  # type: ignore[arg-type]
        await trio.sleep(WATCH_INTERVAL * 2.5)  # between two of the watch's looks
        peer = dials[0].peer_id
        assert dht.listed == []
        pushed = trio.current_time()
        dht.serves[peer] = True
        host.get_peerstore().add_protocols(peer, ["/strangers/kad/1.0.0"])  # what identify push does
        await trio.testing.wait_all_tasks_blocked()
        assert dht.listed == [peer] and trio.current_time() == pushed
        nursery.cancel_scope.cancel()


async def test_with_no_dht_to_join_the_smaller_id_dials_at_once(autojump_clock) -> None:
    """With bootstrap peers it leaves its first search DIAL_GRACE to connect; with none
    (``dial_grace=0``, what the node passes) no search would, and it dials at once."""
    for grace in (DIAL_GRACE, 0.0):
        while True:
            host, _book, _dht, dials, discovery = _discovery(neighbour_serves=True)
            neighbour, name, zc = _neighbour_records()
            if host.get_id().to_bytes() < ID.from_base58(neighbour).to_bytes():
                break
        discovery.dial_grace = grace
        dialled_at: list[float] = []
        connect = host.connect

        async def timed(info, connect=connect, dialled_at=dialled_at) -> None:
            dialled_at.append(trio.current_time())
            await connect(info)

        host.connect = timed  # type: ignore[method-assign]
        heard = trio.current_time()
        await discovery._read(zc, name)  # type: ignore[arg-type]
        assert dialled_at == [heard + grace] and len(dials) == 1


async def test_an_unidentified_neighbour_is_not_listed(autojump_clock) -> None:
    _host, _book, dht, _dials, discovery = _discovery(neighbour_serves=None)  # identify never came
    _neighbour, name, zc = _neighbour_records()
    await discovery._read(zc, name)  # type: ignore[arg-type]
    assert dht.listed == [] and discovery.found == 0


async def test_our_own_record_is_ignored() -> None:
    host, _book, dht, _dials, discovery = _discovery()
    me = host.get_id().to_base58()
    cache = DNSCache()
    cache.async_add_records([DNSText(discovery.name, _TYPE_TXT, _CLASS_IN, 120,
                                     encode_txt([f"dnsaddr=/ip4/10.1.0.9/tcp/1/p2p/{me}".encode()]))])
    await discovery._read(SimpleNamespace(cache=cache), discovery.name)  # type: ignore[arg-type]
    assert dht.listed == [] and discovery.heard == 0


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


async def test_a_record_with_addresses_py_libp2p_cannot_parse_is_read_for_the_rest(autojump_clock) -> None:
    """A neighbour's TXT strings as raw bytes (libp2p mDNS spec: ``dnsaddr=<multiaddr>``):
    one address our scope check accepts but multiaddr cannot parse stopped the whole
    listener (StringParseError out of a task of its nursery)."""
    host, _book, dht, _dials, discovery = _discovery(neighbour_serves=True)
    neighbour = fresh_identity().peer_id.to_base58()
    name = "hostile0123456789abcdefghijklmnopqrs." + SERVICE
    strings = [f"dnsaddr={addr}/p2p/{neighbour}".encode() for addr in (
        "/ip4/10.1.0.7/tcp/1/garbage", "/ip4/10.1.0.7/tcp/1/http-path/%zz", "/ip4/10.1.0.9/tcp/4001")]
    cache = DNSCache()
    cache.async_add_records([DNSText(name, _TYPE_TXT, _CLASS_IN, 120, encode_txt(strings))])
    await discovery._read(SimpleNamespace(cache=cache), name)  # type: ignore[arg-type]
    [peer] = dht.listed
    assert [str(a) for a in host.get_peerstore().addrs(peer)] == ["/ip4/10.1.0.9/tcp/4001"]


async def test_a_record_that_breaks_reading_ends_that_read_only(autojump_clock, caplog) -> None:
    """Whatever goes wrong reading one neighbour's record, the listener's task does not raise."""
    caplog.set_level(logging.INFO, logger="strangers.node.libp2p.mdns")
    _host, _book, _dht, _dials, discovery = _discovery()

    class Broken:
        def get_all_by_details(self, *_args):
            raise RuntimeError("a cache that cannot be read")

    await discovery._read_safely(SimpleNamespace(cache=Broken()), "x." + SERVICE)  # type: ignore[arg-type]
    assert "not read" in caplog.text


async def test_the_grace_ends_when_the_node_finds_its_bootstrap_failed(autojump_clock) -> None:
    """The node sets the grace to 0 when no bootstrap peer answered (a LAN with no way out)."""
    while True:
        host, _book, _dht, dials, discovery = _discovery(neighbour_serves=True)
        neighbour, name, zc = _neighbour_records()
        if host.get_id().to_bytes() < ID.from_base58(neighbour).to_bytes():
            break
    dialled_at: list[float] = []
    connect = host.connect

    async def timed(info) -> None:
        dialled_at.append(trio.current_time())
        await connect(info)

    host.connect = timed  # type: ignore[method-assign]
    heard = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(discovery._read, zc, name)
        await trio.sleep(DIAL_GRACE / 4)
        assert dialled_at == []
        discovery.dial_grace = 0.0
    assert len(dials) == 1 and heard + DIAL_GRACE / 4 <= dialled_at[0] <= heard + DIAL_GRACE / 4 + 0.05
