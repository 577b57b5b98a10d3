"""Integration: interest keys spread over shards (docs/protocol.md, docs/scale.md).

Whole nodes on 127.0.0.1 in one process. The shard a search advertises on and
probes first is drawn at random; these tests pin the draw.
"""

from __future__ import annotations

import itertools
import random
import time
from contextlib import asynccontextmanager

import trio

import strangers.discovery.search as search_module
from strangers.discovery.lookup import K_VALUE
from strangers.discovery.topics import (
    HOME_SHARD,
    SHARDS,
    TopicKey,
    advertise_keys,
    draw_shard,
    epoch_at,
    lookup_epochs,
)
from strangers.node import NodeConfig, events, open_node
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.libp2p.kad import StrangersDHT

from dhtnet import dht_network, next_event

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
NODES = 30
ANNOUNCING_AT_ONCE = 6


def _pin_shards(monkeypatch, shards):
    draws = itertools.chain(shards, itertools.repeat(1))  # then the searches after a chat
    monkeypatch.setattr(search_module, "draw_shard", lambda rng: next(draws))


def _spy_on_walks(monkeypatch) -> list[tuple[StrangersDHT, bytes]]:
    walked: list[tuple[StrangersDHT, bytes]] = []
    original = StrangersDHT.lookup

    async def lookup(self, key, **kwargs):
        if kwargs.get("providers"):  # a search's walk (announcing walks with FIND_NODE)
            walked.append((self, key))
        return await original(self, key, **kwargs)

    monkeypatch.setattr(StrangersDHT, "lookup", lookup)
    return walked


def _shard_of(interest: str) -> dict[bytes, int]:
    """Multihash -> shard, for every key of ``interest`` a search could walk now."""
    now = time.time()
    return {TopicKey(interest, epoch, shard).multihash: shard
            for epoch in {*lookup_epochs(now), epoch_at(now)} for shard in range(SHARDS)}


def _listed(interest: str, shards) -> list[set[bytes]]:
    """The key sets a node announced a few seconds ago may hold (an epoch may just have turned)."""
    epochs = {epoch_at(time.time() - 10), epoch_at(time.time())}
    return [{TopicKey(interest, epoch, shard).multihash for shard in shards} for epoch in epochs]


def _walks_of(walked, dht, interest: str) -> list[int]:
    shards = _shard_of(interest)
    return [shards[key] for who, key in walked if who is dht and key in shards]


def _chat(boot, interest):
    return NodeConfig(listen=LOOPBACK, bootstrap=(boot,), mdns=False,
                      interests=(interest,), interests_only=True)


@asynccontextmanager
async def _waiter_and_joiner(interest: str):
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, chat=False)) as server:
        boot = server.addrs[0]
        async with open_node(_chat(boot, interest)) as waiter:
            await next_event(waiter, events.Advertised)
            async with open_node(_chat(boot, interest)) as joiner:
                assert (await next_event(joiner, events.Matched)).peer_id == waiter.peer_id
                assert (await next_event(waiter, events.Matched)).peer_id == joiner.peer_id
                yield waiter, joiner


async def test_on_a_small_network_a_search_walks_the_home_shard_only(monkeypatch):
    quiet_library_logs()
    _pin_shards(monkeypatch, [3, 5])
    walked = _spy_on_walks(monkeypatch)
    async with _waiter_and_joiner("origami") as (waiter, joiner):
        assert (waiter.search.planner.shard, joiner.search.planner.shard) == (3, 5)
        # nobody probes other shards on a small network: the waiter listed itself at home only
        assert waiter.search.planner.advertised in _listed("origami", (HOME_SHARD,))
    assert set(_walks_of(walked, joiner.dht, "origami")) == {HOME_SHARD}


async def test_on_a_large_network_a_new_topic_is_walked_at_home_and_on_the_probe(monkeypatch):
    """The first search of a topic walks both; its home answer tells whether it is hot."""
    quiet_library_logs()
    monkeypatch.setattr(search_module, "LARGE_NETWORK_TABLE", 0)
    _pin_shards(monkeypatch, [3, 5])
    walked = _spy_on_walks(monkeypatch)
    async with _waiter_and_joiner("kites") as (waiter, joiner):
        assert joiner.search.planner.hot == {"kites": False}  # one stranger listed: not hot
        assert waiter.search.planner.advertised in _listed("kites", (HOME_SHARD, 3))
    assert set(_walks_of(walked, joiner.dht, "kites")) == {5, HOME_SHARD}


async def test_the_records_of_a_popular_interest_spread_over_more_than_k_nodes():
    """Thirty announcers of one interest on a 30-node DHT, as nodes do it: each at
    home and on a random other shard. The other shards, which the searches of a
    large network probe, are held by more than K nodes (one key has K holders)."""
    quiet_library_logs()
    rng = random.Random(7)
    async with dht_network(NODES) as peers:
        # One moment for every announcement and for the keys checked: the network
        # takes ~20 s to come up, and an epoch that turns in between changes the keys.
        now = time.time()
        epoch = epoch_at(now)
        # Thirty nodes share this one process (and its core): announcing all
        # 60 keys at once queues ~4,000 requests behind each other, every one
        # late, which no real network of separate machines does. A few at a
        # time, as nodes that start at different moments announce.
        at_once = trio.CapacityLimiter(ANNOUNCING_AT_ONCE)

        async def announce(peer, key: bytes) -> None:
            async with at_once:
                await peer.dht.provide(key)

        with trio.fail_after(120):  # a hang guard: ~20-40 s on a busy 2-core machine
            async with trio.open_nursery() as nursery:
                for peer in peers:
                    for key in advertise_keys(("music",), anyone=False, now=now,
                                              shard=draw_shard(rng)):
                        nursery.start_soon(announce, peer, key.multihash)
        keys = {TopicKey("music", epoch, shard).multihash for shard in range(SHARDS)
                if shard != HOME_SHARD}

        def holds_others(peer) -> bool:  # an announcer keeps its own record too
            return any(record != str(peer.id)
                       for key in keys for record in peer.dht.provider_store.providers.get(key, {}))

        holders = [peer for peer in peers if holds_others(peer)]
        # one key alone has at most K holders: more means the shards spread the load
        assert len(holders) > K_VALUE, len(holders)
