"""FrontDoor's timing, with fake peers on a MockClock: how often the public DHT is asked, and
what `ready` waits for (arrive, then settle).

The bound this checks (docs/protocol.md §4.9): a node that found no strangers
server asks the public DHT again after 1 min, doubling to at most once every
30 min; a server announces every 22 h (every 5 min while none confirmed it);
a node left without peers dials its cached servers again.
"""

from __future__ import annotations

import functools
import json

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers import preconnect
from strangers.discovery.frontdoor import (
    CACHE_TRIES,
    MAX_SERVERS,
    REPUBLISH_SECONDS,
    rendezvous_key,
)
from strangers.node import frontdoor
from strangers.node.frontdoor import SERVERS_FILE, FrontDoor
from strangers.node.store import DataDir


def _peer() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


class FakeStore:
    def __init__(self) -> None:
        self.known: dict[ID, list[Multiaddr]] = {}
        self.protocols: dict[ID, list[str]] = {}

    def addrs(self, peer):
        return self.known.get(peer, [])

    def get_protocols(self, peer):
        return self.protocols.get(peer, [])

    def add_protocols(self, peer, protocols) -> None:  # what identify calls
        self.protocols.setdefault(peer, []).extend(protocols)


class FakeHost:
    def __init__(self) -> None:
        self.me = _peer()
        self.connected: set[ID] = set()
        self.store = FakeStore()

    def get_id(self):
        return self.me

    def get_connected_peers(self):
        return list(self.connected)

    def get_peerstore(self):
        return self.store


class FakePublic:
    def __init__(self, host: FakeHost, found: list[PeerInfo] | None = None, stores: int = 1) -> None:
        self.host = host
        self.found = found or []
        self.stores = stores
        self.lookups: list[float] = []
        self.provides: list[float] = []

    async def connect(self, peers):
        return 0

    async def find_providers(self, key, count):
        assert key == rendezvous_key()
        self.lookups.append(trio.current_time())
        return list(self.found)

    async def provide(self, key):
        assert key == rendezvous_key()
        self.provides.append(trio.current_time())
        return self.stores


class AnsweringPublic(FakePublic):
    """Bootstrap peers that answer the dial (``--bootstrap`` strangers or libp2p nodes)."""

    async def connect(self, peers):
        for info in peers:
            self.host.connected.add(info.peer_id)
        return len(peers)


def _door(tmp_path, host, public, dialled: list):
    async def own_connect(peers):
        dialled.append((trio.current_time(), [info.peer_id for info in peers]))
        for info in peers:
            host.connected.add(info.peer_id)
            host.store.known[info.peer_id] = list(info.addrs)
        return len(peers)

    return FrontDoor(host, own_connect=own_connect, public=public, data=DataDir(tmp_path),
                     wall_clock=lambda: 1_700_000_000.0)


async def _run_for(door: FrontDoor, seconds: float, **kwargs) -> None:
    with trio.move_on_after(seconds):
        await door.serve(**kwargs)


async def test_a_node_that_found_no_server_asks_again_less_and_less_often(tmp_path, autojump_clock):
    host = FakeHost()
    host.connected.add(_peer())  # a public peer: not alone, just no server
    public = FakePublic(host)
    door = _door(tmp_path, host, public, [])
    await _run_for(door, 4 * 3600, announce=lambda: False, lonely=True)
    gaps = [b - a for a, b in zip([0.0, *public.lookups], public.lookups)]
    assert [round(gap) for gap in gaps[:6]] == [60, 120, 240, 480, 960, 1800]
    assert max(gaps) <= 1800 + 1e-6
    assert len(public.lookups) == 11  # 4 h: at most one request per 30 min after the first hour
    assert public.provides == []


async def test_the_lookups_stop_once_a_server_is_found(tmp_path, autojump_clock):
    host = FakeHost()
    host.connected.add(_peer())
    server = PeerInfo(_peer(), [Multiaddr("/ip4/10.0.0.7/tcp/4001")])
    public = FakePublic(host)
    dialled: list = []
    door = _door(tmp_path, host, public, dialled)

    async def appear():
        await trio.sleep(200)  # the first strangers server shows up on the public DHT
        public.found = [server]

    joined: list[int] = []

    async def fill(found: int) -> None:
        joined.append(found)

    door.on_found = fill
    async with trio.open_nursery() as nursery:
        nursery.start_soon(appear)
        await _run_for(door, 3600, announce=lambda: False, lonely=True)
    assert [round(t) for t in public.lookups] == [60, 180, 420]
    assert joined == [1]  # our DHT's table is filled through the server found
    assert server.peer_id in door.servers
    assert DataDir(tmp_path).read_json(SERVERS_FILE, None)["servers"][0]["peer"] == \
        server.peer_id.to_base58()


async def test_a_server_announces_every_22_hours_and_retries_an_unconfirmed_announcement(
        tmp_path, autojump_clock):
    host = FakeHost()
    host.connected.add(_peer())
    confirmed = FakePublic(host, stores=3)
    await _run_for(_door(tmp_path, host, confirmed, []), 3 * REPUBLISH_SECONDS - 1,
                   announce=lambda: True, lonely=False)
    assert [round(t) for t in confirmed.provides] == [0, REPUBLISH_SECONDS, 2 * REPUBLISH_SECONDS]
    unconfirmed = FakePublic(host, stores=0)
    await _run_for(_door(tmp_path, host, unconfirmed, []), 3600, announce=lambda: True, lonely=False)
    assert len(unconfirmed.provides) == 3600 / frontdoor.ANNOUNCE_RETRY


async def test_a_node_announces_only_while_it_is_a_server(tmp_path, autojump_clock):
    host = FakeHost()
    host.connected.add(_peer())
    public = FakePublic(host)
    reachable = {"now": False}

    async def becomes_reachable():
        await trio.sleep(100)
        reachable["now"] = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(becomes_reachable)
        await _run_for(_door(tmp_path, host, public, []), 1000,
                       announce=lambda: reachable["now"], lonely=False)
    assert len(public.provides) == 1 and 100 <= public.provides[0] <= 100 + frontdoor.WATCH_INTERVAL


async def test_a_node_left_alone_dials_its_cached_servers_again(tmp_path, autojump_clock):
    host = FakeHost()
    cached = PeerInfo(_peer(), [Multiaddr("/ip4/10.0.0.8/tcp/4001")])
    public = FakePublic(host)
    dialled: list = []
    door = _door(tmp_path, host, public, dialled)
    door.cache.seen(cached.peer_id.to_base58(), ["/ip4/10.0.0.8/tcp/4001"], now=1.0)
    host.connected.add(_peer())  # connected to someone at first
    run = functools.partial(door.serve, announce=lambda: False, lonely=False)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(100)
        assert dialled == []  # not while peers are there
        host.connected.clear()  # every peer died
        await trio.sleep(frontdoor.WATCH_INTERVAL + 1)
        nursery.cancel_scope.cancel()
    assert dialled and dialled[0][1] == [cached.peer_id]
    assert cached.peer_id in door.servers
    assert public.lookups == []


async def test_launch_with_the_default_list_tries_the_cache_before_the_public_network(tmp_path):
    host = FakeHost()
    cached = PeerInfo(_peer(), [Multiaddr("/ip4/10.0.0.8/tcp/4001")])
    public = FakePublic(host)
    door = _door(tmp_path, host, public, [])
    door.cache.seen(cached.peer_id.to_base58(), ["/ip4/10.0.0.8/tcp/4001"], now=1.0)
    with trio.fail_after(10):
        arrival = await door.enter(["/dnsaddr/never.resolved.test/p2p/" + _peer().to_base58()],
                                   default_list=True)
    assert arrival.from_cache == 1 and not arrival.looked_up and public.lookups == []


async def test_a_node_told_to_dial_no_bootstrap_peer_never_dials_its_cache(tmp_path, autojump_clock):
    host = FakeHost()
    dialled: list = []
    door = _door(tmp_path, host, FakePublic(host), dialled)
    door.cache.seen(_peer().to_base58(), ["/ip4/10.0.0.8/tcp/4001"], now=1.0)
    await _run_for(door, 3600, announce=lambda: False, lonely=False, recover=False)
    assert dialled == []


async def test_failing_lookups_and_announcements_are_retried_not_raised(tmp_path, autojump_clock):
    host = FakeHost()
    host.connected.add(_peer())

    class Broken(FakePublic):
        async def find_providers(self, key, count):
            self.lookups.append(trio.current_time())
            raise RuntimeError("the walk broke")

        async def provide(self, key):
            self.provides.append(trio.current_time())
            raise RuntimeError("the walk broke")

    public = Broken(host)
    door = _door(tmp_path, host, public, [])
    assert await door.look_up() == 0
    await _run_for(door, 3600, announce=lambda: True, lonely=True)
    assert [round(t) for t in public.lookups] == [0, 60, 180, 420, 900, 1860]
    assert len(public.provides) == 3600 / frontdoor.ANNOUNCE_RETRY


# -- arrive, then settle: ready does not wait for a --bootstrap peer's identify --------
# Whether a bootstrap peer is a strangers node is told by its identify, one round trip
# after the connection: the node is ready once the peer answered, and FrontDoor.settle
# finishes the check while the first search walks.

IDENTIFY_AFTER = 0.3


def _settle_door(tmp_path, found: list[PeerInfo] | None = None):
    host = FakeHost()
    public = AnsweringPublic(host, found or [])
    return host, public, _door(tmp_path, host, public, [])


async def _identify_later(host: FakeHost, peer: ID, protocols: list[str]) -> None:
    await trio.sleep(IDENTIFY_AFTER)
    host.store.add_protocols(peer, protocols)


async def test_ready_comes_before_identify_and_a_strangers_seed_needs_no_lookup(tmp_path, autojump_clock):
    host, public, door = _settle_door(tmp_path)
    seed = _peer()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_identify_later, host, seed, ["/ipfs/id/1.0.0", "/strangers/kad/1.0.0"])
        arrival = await door.arrive([f"/ip4/10.9.0.1/tcp/4001/p2p/{seed}"], default_list=False)
        assert trio.current_time() == start  # not a round trip later
        assert arrival.bootstrap == 1 and not door.settled.is_set() and not door.servers
        settled = await door.settle(arrival)
    assert trio.current_time() == start + IDENTIFY_AFTER  # woken by identify, not a poll
    assert door.settled.is_set() and seed in door.servers and settled.servers == 1
    assert not settled.looked_up and public.lookups == []


async def test_a_seed_that_is_no_strangers_node_is_followed_by_one_lookup(tmp_path, autojump_clock):
    server = PeerInfo(_peer(), [])
    host, public, door = _settle_door(tmp_path, found=[server])
    joined: list[int] = []

    async def on_found(found: int) -> None:
        joined.append(found)

    door.on_found = on_found
    seed = _peer()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_identify_later, host, seed, ["/ipfs/id/1.0.0", "/ipfs/kad/1.0.0"])
        arrival = await door.arrive([f"/ip4/10.9.0.1/tcp/4001/p2p/{seed}"], default_list=False)
        settled = await door.settle(arrival)
    assert settled.looked_up and len(public.lookups) == 1 and seed not in door.servers
    assert settled.found == 1 and joined == [1]  # the search's table hears of it


async def test_enter_is_arrive_then_settle(tmp_path, autojump_clock):
    host, public, door = _settle_door(tmp_path)
    seed = _peer()
    host.store.add_protocols(seed, ["/strangers/match/1.0.0"])
    arrival = await door.enter([f"/ip4/10.9.0.1/tcp/4001/p2p/{seed}"], default_list=False)
    assert door.settled.is_set() and arrival.servers == 1 and public.lookups == []


async def test_launch_dials_the_cached_servers_closest_to_the_first_search_then_the_newest(tmp_path):
    """The front door dials what the executable connected to before its imports
    (preconnect.launch_addrs): the same ServerCache.first_tries of the same keys."""
    host = FakeHost()
    dialled: list = []
    public = FakePublic(host)
    keys = [b"\x12\x20" + bytes(32), b"\x12\x20" + b"\xff" * 32]
    door = FrontDoor(host, own_connect=_door(tmp_path, host, public, dialled)._own_connect,
                     public=public, data=DataDir(tmp_path), wall_clock=lambda: 1_700_000_000.0,
                     search_keys=keys)
    peers = [_peer() for _ in range(MAX_SERVERS)]
    for index, peer in enumerate(peers):
        door.cache.seen(peer.to_base58(), [f"/ip4/10.0.{index}.8/tcp/4001"], now=float(index))
    # what the executable connected to, from the cache as it was at launch
    (tmp_path / "servers.json").write_text(json.dumps(door.cache.to_json()))
    early = preconnect.launch_addrs(None, tmp_path, keys)
    expected = [ID.from_base58(server.peer) for server in door.cache.first_tries(keys)]
    assert expected != [ID.from_base58(server.peer) for server in door.cache.newest(CACHE_TRIES)]
    first_addr = {ID.from_base58(server.peer): server.addrs[0] for server in door.cache.servers}
    with trio.fail_after(10):
        arrival = await door.enter(["/dnsaddr/never.resolved.test/p2p/" + _peer().to_base58()],
                                   default_list=True)
    assert dialled[0][1] == expected
    assert [first_addr[peer] for peer in expected] == early
    assert arrival.from_cache == CACHE_TRIES
