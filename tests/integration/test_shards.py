"""Integration: interest keys spread over shards (docs/protocol.md, docs/scale.md).

Whole nodes on 127.0.0.1 in one process. The shard a search advertises on and
probes first is drawn at random; these tests pin the draw.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest
import trio

import strangers.node.node as node_module
from dhtnet import dht_network
from strangers.discovery.kad import StrangersDHT
from strangers.discovery.lookup import K_VALUE
from strangers.discovery.topics import SHARDS, TopicKey, epoch_at, lookup_epochs
from strangers.node import NodeConfig, events, open_node
from strangers.node.host import quiet_library_logs

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
NODES = 30


def _pin_shards(monkeypatch, shards):
    draws = itertools.chain(shards, itertools.repeat(0))  # then the searches after a chat
    monkeypatch.setattr(node_module, "draw_shard", lambda rng: next(draws))


def _spy_on_walks(monkeypatch) -> list[tuple[StrangersDHT, bytes]]:
    walked: list[tuple[StrangersDHT, bytes]] = []
    original = StrangersDHT.lookup

    async def lookup(self, key, **kwargs):
        walked.append((self, key))
        return await original(self, key, **kwargs)

    monkeypatch.setattr(StrangersDHT, "lookup", lookup)
    return walked


def _shard_of(interest: str) -> dict[bytes, int]:
    """Multihash -> shard, for every key of ``interest`` a search could walk now."""
    now = time.time()
    return {TopicKey(interest, epoch, shard).multihash: shard
            for epoch in {*lookup_epochs(now), epoch_at(now)} for shard in range(SHARDS)}


async def _matched(node, timeout=15):
    with trio.fail_after(timeout):
        async for event in node.events():
            if isinstance(event, events.Matched):
                return event
    raise AssertionError("event stream ended")


async def _advertised(node, timeout=15):
    with trio.fail_after(timeout):
        async for event in node.events():
            if isinstance(event, events.Advertised):
                return event
    raise AssertionError("event stream ended")


def _chat(boot, interest):
    return NodeConfig(listen=LOOPBACK, bootstrap=(boot,), mdns=False,
                      interests=(interest,), interests_only=True)


@pytest.mark.parametrize("waiter_shard, joiner_shard", [(3, 5), (0, SHARDS - 1)])
async def test_strangers_listed_on_different_shards_meet(monkeypatch, waiter_shard, joiner_shard):
    quiet_library_logs()
    _pin_shards(monkeypatch, [waiter_shard, joiner_shard])
    walked = _spy_on_walks(monkeypatch)
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, chat=False)) as server:
        boot = server.addrs[0]
        async with open_node(_chat(boot, "origami")) as waiter:
            await _advertised(waiter)
            async with open_node(_chat(boot, "origami")) as joiner:
                assert (waiter._shard, joiner._shard) == (waiter_shard, joiner_shard)
                assert (await _matched(joiner)).peer_id == waiter.peer_id
                assert (await _matched(waiter)).peer_id == joiner.peer_id
    shards = _shard_of("origami")
    # the joiner probed its own shard first
    joiner_walks = [shards[key] for dht, key in walked if dht is joiner.dht and key in shards]
    assert joiner_walks and joiner_walks[0] == joiner_shard


async def test_a_search_that_finds_someone_on_its_probe_shard_walks_no_other(monkeypatch):
    quiet_library_logs()
    _pin_shards(monkeypatch, [4, 4])
    walked = _spy_on_walks(monkeypatch)
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, chat=False)) as server:
        boot = server.addrs[0]
        async with open_node(_chat(boot, "kites")) as waiter:
            await _advertised(waiter)
            async with open_node(_chat(boot, "kites")) as joiner:
                assert (await _matched(joiner)).peer_id == waiter.peer_id
    shards = _shard_of("kites")
    joiner_walks = {shards[key] for dht, key in walked if dht is joiner.dht and key in shards}
    assert joiner_walks == {4}


async def test_the_records_of_a_popular_interest_spread_over_more_than_k_nodes():
    """Forty announcers of one interest on a 40-node DHT, as nodes do it: each on a
    random shard. Unsharded, at most K nodes would hold them; sharded, most do."""
    quiet_library_logs()
    rng = random.Random(7)
    epoch = epoch_at(time.time())
    async with dht_network(NODES) as peers:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for peer in peers:
                    key = TopicKey("music", epoch, node_module.draw_shard(rng)).multihash
                    nursery.start_soon(peer.dht.provide, key)
        keys = {TopicKey("music", epoch, shard).multihash for shard in range(SHARDS)}

        def holds_others(peer) -> bool:  # an announcer keeps its own record too
            return any(record != str(peer.id)
                       for key in keys for record in peer.dht.provider_store.providers.get(key, {}))

        holders = [peer for peer in peers if holds_others(peer)]
        print("holders", len(holders))
        assert len(holders) > K_VALUE + 5, len(holders)
