"""Integration: our DHT client on a network of real py-libp2p hosts (127.0.0.1)."""

from __future__ import annotations

import trio
from libp2p.kad_dht.kad_dht import KadDHT

from strangers.discovery.topics import TopicKey

from dhtnet import dht_network, lone_peer

KEY = TopicKey("cinema", 1000, 0).multihash


async def test_bootstrap_fills_every_routing_table_cheaply():
    async with dht_network(10) as peers:
        assert all(p.dht.routing_table.size() >= 5 for p in peers), [
            p.dht.routing_table.size() for p in peers]
        # a self-lookup and a random lookup, not py-libp2p's refresh storm
        # (~1,900 FIND_NODE per node on 10 nodes, see docs/performance.md)
        for peer in peers[1:]:
            assert peer.dht.stats.rpcs.get("FIND_NODE", 0) <= 40, peer.dht.stats


async def test_providers_are_found_fresh_from_the_network_without_duplicates():
    async with dht_network(10) as peers:
        seeker, first, second = peers[7], peers[3], peers[5]
        with trio.fail_after(10):
            assert await first.dht.provide(KEY) >= 5
            found = await seeker.dht.find_providers(KEY)
        assert [info.peer_id for info in found] == [first.id]

        # A provider that arrives later is seen by the next lookup. py-libp2p's
        # own find_providers answers from the local store once it holds any
        # record for the key, so it would keep returning [first] for ever.
        with trio.fail_after(10):
            assert await second.dht.provide(KEY) >= 5
            found = await seeker.dht.find_providers(KEY)
        ids = [info.peer_id for info in found]
        assert sorted(map(str, ids)) == sorted(map(str, [first.id, second.id]))
        assert len(ids) == len(set(ids))

        # the provider itself is never its own candidate
        with trio.fail_after(10):
            mine = await first.dht.find_providers(KEY)
        assert [info.peer_id for info in mine] == [second.id]


async def test_library_find_providers_serves_stale_local_records():
    """Shows the py-libp2p 0.8.1 bug our client works around (if this starts
    failing, the library fixed it and our workaround can be reviewed): once a
    node holds any local record for a key, KadDHT.find_providers never asks
    the network again."""
    async with dht_network(6) as peers:
        seeker, first, second = peers[1], peers[2], peers[3]
        with trio.fail_after(10):
            await first.dht.provide(KEY)  # stored everywhere, the seeker included
            others = [p.id for p in peers if p is not seeker and p is not second]
            assert await second.dht.provide(KEY, closest=others) == len(others)
            stale = await KadDHT.find_providers(seeker.dht, KEY.hex())
            fresh = await seeker.dht.find_providers(KEY)
        assert {i.peer_id for i in stale} == {first.id}
        assert {i.peer_id for i in fresh} == {first.id, second.id}


async def test_provide_reports_how_many_peers_took_the_record():
    async with dht_network(8) as peers:
        with trio.fail_after(10):
            stored = await peers[4].dht.provide(KEY)
        assert stored == 7
        holders = [p for p in peers if p.dht.provider_store.get_providers(KEY)]
        assert len(holders) == 8  # the 7 others and our own store


async def test_lookup_survives_dead_peers():
    async with dht_network(10) as peers:
        provider = peers[2]
        with trio.fail_after(10):
            await provider.dht.provide(KEY)
        for dead in peers[5:8]:
            await dead.stop()
        with trio.fail_after(10):
            found = await peers[9].dht.find_providers(KEY)
        assert [i.peer_id for i in found] == [provider.id]


async def test_a_lone_node_finds_nothing_quickly():
    async with lone_peer() as peer:
        with trio.fail_after(3):
            assert await peer.dht.find_providers(KEY) == []
            assert await peer.dht.provide(KEY) == 0


async def test_late_announcers_are_found_even_after_twenty_others():
    """py-libp2p keeps only the first 20 providers of a key; we keep the newest."""
    async with dht_network(4) as peers:
        holder, late = peers[1], peers[2]
        store = holder.dht.provider_store
        from libp2p.peer.peerinfo import PeerInfo
        from multiaddr import Multiaddr

        from strangers.node.identity import fresh_identity
        for _ in range(25):  # 25 earlier announcers (now probably gone)
            store.add_provider(KEY, PeerInfo(fresh_identity().peer_id,
                                             [Multiaddr("/ip4/127.0.0.1/tcp/9")]))
        with trio.fail_after(10):
            assert await late.dht.provide(KEY, closest=[holder.id]) == 1
        newest = store.get_providers(KEY)
        assert len(newest) == 20
        assert newest[0].peer_id == late.id
