"""FrontDoor's timing, with fake peers on a MockClock: how often the public DHT is asked.

The bound this checks (docs/protocol.md §4.9): a node that found no strangers
server asks the public DHT again after 1 min, doubling to at most once every
30 min; a server announces every 22 h (every 5 min while none confirmed it);
a node left without peers dials its cached servers again.
"""

from __future__ import annotations

import functools

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery.frontdoor import REPUBLISH_SECONDS, rendezvous_key
from strangers.node import frontdoor
from strangers.node.frontdoor import SERVERS_FILE, FrontDoor
from strangers.node.store import DataDir


def _peer() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


class FakeStore:
    def __init__(self) -> None:
        self.known: dict[ID, list[Multiaddr]] = {}

    def addrs(self, peer):
        return self.known.get(peer, [])

    def get_protocols(self, peer):
        return []


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
