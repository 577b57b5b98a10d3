"""FrontDoor.arrive and settle: ``ready`` does not wait for a ``--bootstrap`` peer's identify.

Whether a bootstrap peer is a strangers node is told by its identify, one round
trip after the connection: the node is ready once the peer answered, and
:meth:`FrontDoor.settle` finishes the check while the first search walks.
Fake peers on a MockClock; the peer's protocols are written to the peerstore
the way identify writes them.
"""

from __future__ import annotations

import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from strangers.node.frontdoor import FrontDoor
from strangers.node.store import DataDir

IDENTIFY_AFTER = 0.3


def _peer() -> ID:
    return ID.from_pubkey(create_new_key_pair().public_key)


class Store:
    def __init__(self) -> None:
        self.protocols: dict[ID, list[str]] = {}

    def get_protocols(self, peer):
        return self.protocols.get(peer, [])

    def add_protocols(self, peer, protocols) -> None:  # what identify calls
        self.protocols.setdefault(peer, []).extend(protocols)

    def addrs(self, peer):
        return []


class Host:
    def __init__(self) -> None:
        self.me = _peer()
        self.connected: set[ID] = set()
        self.store = Store()

    def get_id(self):
        return self.me

    def get_connected_peers(self):
        return list(self.connected)

    def get_peerstore(self):
        return self.store


class Public:
    def __init__(self, host: Host, found: list[PeerInfo]) -> None:
        self.host = host
        self.found = found
        self.lookups: list[float] = []

    async def connect(self, peers: list[PeerInfo]) -> int:
        for info in peers:
            self.host.connected.add(info.peer_id)
        return len(peers)

    async def find_providers(self, key, count):
        self.lookups.append(trio.current_time())
        return list(self.found)

    async def provide(self, key):
        return 1


def _door(tmp_path, found: list[PeerInfo] | None = None):
    host = Host()
    public = Public(host, found or [])

    async def own_connect(peers):
        for info in peers:
            host.connected.add(info.peer_id)
        return len(peers)

    door = FrontDoor(host, own_connect=own_connect, public=public, data=DataDir(tmp_path),
                     wall_clock=lambda: 1_700_000_000.0)
    return host, public, door


async def _identify_later(host: Host, peer: ID, protocols: list[str]) -> None:
    await trio.sleep(IDENTIFY_AFTER)
    host.store.add_protocols(peer, protocols)


async def test_ready_comes_before_identify_and_a_strangers_seed_needs_no_lookup(tmp_path, autojump_clock):
    host, public, door = _door(tmp_path)
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
    host, public, door = _door(tmp_path, found=[server])
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
    host, public, door = _door(tmp_path)
    seed = _peer()
    host.store.add_protocols(seed, ["/strangers/match/1.0.0"])
    arrival = await door.enter([f"/ip4/10.9.0.1/tcp/4001/p2p/{seed}"], default_list=False)
    assert door.settled.is_set() and arrival.servers == 1 and public.lookups == []
