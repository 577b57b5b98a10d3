"""Discovery at internet scale, by simulation: the real lookup, keys and matcher, no sockets.

    python bench/simulate.py [--quick] [--sizes 1000 10000 100000] [--samples 500]
                             [--seed 1] [--no-plots]

Drives the pure cores of ``strangers.discovery`` -- ``ClosestPeersQuery``
(lookup.py), ``TopicKey`` (topics.py), ``Matcher`` (matcher.py) and the
node's search policy, ``SearchPlanner`` (search.py, through
``bench/search_sim.py``) -- through a discrete-event simulation of a Kademlia
network of N nodes: one heap of (time, event), per-RPC latencies, dead peers
that time out. The walk adapter below mirrors ``StrangersDHT.lookup`` in
``node/libp2p/kad.py`` line by line (same stop rules, read from its signature).

Needs numpy and matplotlib (``pip install numpy matplotlib``; not project
dependencies). Prints one JSON object on stdout, progress and markdown tables
on stderr, and writes PNG plots into docs/img/ (not with --quick). The model,
its assumptions and the figures are in docs/scale.md; they were produced with
``--sizes 1000 10000 100000 1000000`` (2-3 min, 3 GB of memory for the
million-node routing tables). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import inspect
import itertools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from search_sim import (  # the node's search policy, not a copy of it
    FAST_ENOUGH_SOURCES,
    FAST_NUM_RESULTS,
    READVERTISE_JITTER,
    simulate_search,
    stranger_shards,
)

from strangers.discovery import topics
from strangers.discovery.lookup import ALPHA, K_VALUE, SEARCH_CLOSEST, ClosestPeersQuery
from strangers.discovery.matcher import Matcher
from strangers.discovery.topics import EPOCH_SECONDS, HOME_SHARD, TopicKey, epoch_at
from strangers.node.libp2p.kad import MAX_RECORDS_PER_KEY, StrangersDHT

PEER_ID_PREFIX = b"\x00\x24\x08\x01\x12\x20"
"""Identity multihash of an Ed25519 public-key protobuf: what a real peer id starts with."""

_LOOKUP_DEFAULTS = inspect.signature(StrangersDHT.lookup).parameters
ENOUGH_PROVIDERS = _LOOKUP_DEFAULTS["enough_providers"].default
ENOUGH_SOURCES = _LOOKUP_DEFAULTS["enough_sources"].default
RPC_TIMEOUT = inspect.signature(StrangersDHT.__init__).parameters["rpc_timeout"].default

RECORD_BYTES = 100
"""Wire size of one provider record in a GET_PROVIDERS reply (38-byte peer id, two addresses, framing)."""
MAX_KAD_MESSAGE = 256 * 1024
"""Largest Kademlia reply our client reads (kad.py); a bigger reply fails the RPC."""
PY_LIBP2P_PROVIDER_CAP = 20
"""py-libp2p 0.8.1 keeps at most k providers per key and drops later ones (provider_store.py)."""
SEARCH_INTERVAL = 60.0
"""Load model: every user of the hot interest starts one search a minute."""
SHARD_COUNTS = (1, 8, 32, 128)
NOW = 1_800_000_000.0
"""Unix time the topic keys are computed at (any time gives statistically the same keys)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def shard_count(shards: int) -> Iterator[None]:
    """Let ``TopicKey`` and the planner use ``shards`` shards (the protocol's is ``topics.SHARDS``)."""
    saved = topics.SHARDS
    topics.SHARDS = shards
    try:
        yield
    finally:
        topics.SHARDS = saved


def key_point(key: bytes) -> np.uint64:
    """Top 64 bits of sha256(key): where ``key`` sits in the XOR keyspace (as kad_distance)."""
    return np.uint64(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


# -- the overlay -------------------------------------------------------------------


class Overlay:
    """N nodes, their peer ids, and one k-bucket routing table per node.

    Bucket i of node x holds up to k peers whose key shares exactly i leading
    bits with x's key (key = sha256(peer id), as in libp2p). Buckets are
    filled from the global sorted view: bucket i is one contiguous range of
    the sorted keys, and k members are drawn from it by stratified sampling
    (k distinct members spread over the range). Keys are compared on their
    top 64 bits (two of 10^5 random keys share 64 bits with probability
    ~3e-10), so buckets deeper than 63 are left out.
    """

    def __init__(self, size: int, rng: np.random.Generator, k: int = K_VALUE) -> None:
        raw = rng.bytes(32 * size)
        self.ids = [PEER_ID_PREFIX + raw[32 * i: 32 * i + 32] for i in range(size)]
        self.index = {peer: i for i, peer in enumerate(self.ids)}
        digests = b"".join(hashlib.sha256(peer).digest()[:8] for peer in self.ids)
        self.keys = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
        self.size = size
        self._build_tables(rng, k)

    def _build_tables(self, rng: np.random.Generator, k: int) -> None:
        order = np.argsort(self.keys, kind="stable").astype(np.int32)
        sorted_keys = self.keys[order]

        def bucket(level: int) -> tuple[np.ndarray, np.ndarray]:
            """First index in sorted order and size of every node's bucket ``level``."""
            shift = np.uint64(63 - level)
            low = ((self.keys >> shift) ^ np.uint64(1)) << shift
            high = low | ((np.uint64(1) << shift) - np.uint64(1))
            start = np.searchsorted(sorted_keys, low, "left")
            return start, np.searchsorted(sorted_keys, high, "right") - start

        # pass 1: how many entries each node keeps, to lay the tables out flat
        taken = [np.minimum(bucket(level)[1], k).astype(np.int8) for level in range(64)]
        self.table_start = np.concatenate(([0], np.cumsum(np.sum(taken, axis=0, dtype=np.int64))))
        self.table = np.empty(self.table_start[-1], dtype=np.int32)
        filled = self.table_start[:-1].copy()
        slots = np.arange(k)
        # pass 2: draw the members, bucket by bucket
        for level in range(64):
            start, count = bucket(level)
            nodes = np.nonzero(count)[0]
            if not len(nodes):
                continue
            count, start = count[nodes][:, None], start[nodes][:, None]
            # slot j draws from its own sub-range [j*c/k, (j+1)*c/k): distinct members
            edges = (np.arange(k + 1) * count) // k
            width = edges[:, 1:] - edges[:, :-1]
            drawn = edges[:, :-1] + (rng.random((len(nodes), k)) * width).astype(np.int64)
            offsets = np.where(count > k, drawn, slots)
            valid = slots < np.minimum(count, k)
            where = filled[nodes][:, None] + slots
            self.table[where[valid]] = order[(start + offsets)[valid]]
            filled[nodes] += taken[level][nodes]

    def table_of(self, node: int) -> np.ndarray:
        return self.table[self.table_start[node]: self.table_start[node + 1]]

    def closest_in_table(self, node: int, point: np.uint64, count: int = K_VALUE) -> np.ndarray:
        """What ``node`` answers to FIND_NODE/GET_PROVIDERS: its ``count`` closest known peers."""
        members = self.table_of(node)
        if len(members) <= count:
            return members
        return members[np.argpartition(self.keys[members] ^ point, count)[:count]]

    def closest(self, point: np.uint64, count: int = K_VALUE,
                alive: np.ndarray | None = None) -> np.ndarray:
        """The true ``count`` closest nodes to ``point`` (optionally live ones only), nearest first."""
        distance = self.keys ^ point
        if alive is not None:
            distance = np.where(alive, distance, np.uint64(2**64 - 1))
        nearest = np.argpartition(distance, count)[:count]
        return nearest[np.argsort(distance[nearest])]


# -- time, latency, churn ---------------------------------------------------------


@dataclass(frozen=True)
class NetworkModel:
    """Latency and failure model of one simulated network."""

    one_way: tuple[float, float] = (0.020, 0.200)
    """Uniform one-way latency per message, seconds (drawn per direction, per RPC)."""
    peer_timeout: float = RPC_TIMEOUT
    """Per-RPC timeout of the walk (kad.py's rpc_timeout)."""
    dead_fraction: float = 0.0
    """Nodes that left but still sit in routing tables; RPCs to them time out."""
    extra_rtts: int = 0
    """Round trips added to every RPC (e.g. 4 for a fresh TCP+Noise+Yamux connection)."""

    def rtt(self, rng: random.Random) -> float:
        low, high = self.one_way
        return (1 + self.extra_rtts) * (rng.uniform(low, high) + rng.uniform(low, high))


class EventLoop:
    """A heap of (time, sequence, callback): the whole simulated clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._sequence), callback))

    def run(self) -> None:
        while self._heap:
            self.now, _, callback = heapq.heappop(self._heap)
            callback()


class Network:
    """An overlay with a churn state, an event loop and a latency model."""

    def __init__(self, overlay: Overlay, model: NetworkModel, seed: int) -> None:
        self.overlay = overlay
        self.model = model
        self.rng = random.Random(seed)
        generator = np.random.default_rng(seed)
        self.alive = generator.random(overlay.size) >= model.dead_fraction
        self.live_nodes = np.nonzero(self.alive)[0]
        self.loop = EventLoop()

    def random_live_node(self) -> int:
        return int(self.live_nodes[self.rng.randrange(len(self.live_nodes))])


# -- one walk: the adapter of kad.py, over simulated RPCs --------------------------


class Walk:
    """One iterative lookup, driven exactly like ``StrangersDHT.lookup``.

    ``records`` maps the nodes that store provider records for ``key`` to the
    providers they return; None makes it a FIND_NODE walk. ``num_results``
    and ``enough_sources`` are the arguments of ``StrangersDHT.lookup`` (its
    defaults unless given; a search's walks pass the planner's, see ``walk_pool``).
    """

    def __init__(self, net: Network, origin: int, key: bytes,
                 records: dict[int, frozenset[bytes]] | None = None,
                 num_results: int = K_VALUE, enough_sources: int = ENOUGH_SOURCES) -> None:
        self.net = net
        self.enough_sources = enough_sources
        self.key = key
        self.point = key_point(key)
        self.records = records
        ids = net.overlay.ids
        seeds = [ids[n] for n in net.overlay.closest_in_table(origin, self.point)]
        self.query = ClosestPeersQuery(key, seeds, local_id=ids[origin], num_results=num_results,
                                       peer_timeout=net.model.peer_timeout)
        self.depth = dict.fromkeys(seeds, 1)
        """Referral depth: seeds are hop 1, a peer first named by a hop-h peer is hop h+1."""
        self.contacted: list[int] = []
        self.found: set[bytes] = set()
        self.sources = 0
        self.first_source_hop: int | None = None
        self.started = net.loop.now
        self.finished_at: float | None = None

    def start(self) -> Walk:
        self.started = self.net.loop.now
        self._pump()
        return self

    def _pump(self) -> None:
        net, now = self.net, self.net.loop.now
        for peer in self.query.next(now):
            node = net.overlay.index[peer]
            self.contacted.append(node)
            rtt = net.model.rtt(net.rng)
            if net.alive[node] and rtt < net.model.peer_timeout:
                net.loop.call_at(now + rtt, lambda peer=peer: self._answer(peer))
            else:
                net.loop.call_at(now + net.model.peer_timeout, lambda peer=peer: self._timeout(peer))
        # the same three exits as kad.py's loop, in the same order
        if self.query.finished:
            return self._finish()
        if self.records is not None and (
            len(self.found) >= ENOUGH_PROVIDERS or self.sources >= self.enough_sources
        ):
            return self._finish()
        if self.query.next_deadline() is None:
            return self._finish()

    def _answer(self, peer: bytes) -> None:
        if self.finished_at is not None:
            return  # the walk is over: kad.py cancelled this RPC
        overlay = self.net.overlay
        node = overlay.index[peer]
        closer = [overlay.ids[n] for n in overlay.closest_in_table(node, self.point)]
        hop = self.depth[peer]
        for other in closer:
            self.depth.setdefault(other, hop + 1)
        self.query.on_success(peer, closer)
        if self.records is not None and node in self.records:
            self.sources += 1
            self.found |= self.records[node]
            if self.first_source_hop is None:
                self.first_source_hop = hop
        self._pump()

    def _timeout(self, peer: bytes) -> None:
        if self.finished_at is not None:
            return
        self.query.on_failure(peer)
        self._pump()

    def _finish(self) -> None:
        self.finished_at = self.net.loop.now

    # -- what the walk cost ---------------------------------------------------

    @property
    def duration(self) -> float:
        assert self.finished_at is not None
        return self.finished_at - self.started

    def hops(self) -> int:
        """Referral depth of the closest peer found (FIND_NODE) or first record holder reached."""
        if self.records is not None and self.first_source_hop is not None:
            return self.first_source_hop
        result = self.query.result()
        return self.depth[result[0]] if result else 0

    def rounds(self) -> int:
        """Longest referral chain that was queried."""
        return max((self.depth[self.net.overlay.ids[n]] for n in self.contacted), default=0)


def run_walks(net: Network, walks: list[Walk]) -> list[Walk]:
    """Start ``walks`` at the same instant and run the clock until all are done."""
    for walk in walks:
        walk.start()
    net.loop.run()
    return walks


def topic(label: str, *, epoch_offset: int = 0, shard: int = 0) -> TopicKey:
    """A real topic key (current epoch minus ``epoch_offset``) for interest ``label``."""
    return TopicKey(label, epoch_at(NOW) - epoch_offset, shard)


# -- statistics -------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p90": percentile(values, 0.9),
            "mean": statistics.fmean(values), "n": len(values)}


# -- (a, b) lookups versus N and churn ------------------------------------------------


def lookup_scaling(overlay: Overlay, churn: float, samples: int, seed: int,
                   extra_rtts: int = 0) -> dict:
    """FIND_NODE walks to random topic keys, and provider walks to a key with one record."""
    net = Network(overlay, NetworkModel(dead_fraction=churn, extra_rtts=extra_rtts), seed)
    found_nodes, found_providers = [], []
    for i in range(samples):
        key = topic(f"scaling {seed} {i}").multihash
        walk = run_walks(net, [Walk(net, net.random_live_node(), key)])[0]
        truth = {overlay.ids[n] for n in overlay.closest(key_point(key), K_VALUE, net.alive)}
        found_nodes.append((walk, len(truth & set(walk.query.result())) / K_VALUE))
        holders = overlay.closest(key_point(key), K_VALUE)  # stored before some of them left
        records = {int(n): frozenset({b"stranger"}) for n in holders}
        found_providers.append(run_walks(net, [Walk(net, net.random_live_node(), key, records)])[0])
    walks = [walk for walk, _ in found_nodes]
    return {
        "nodes": overlay.size, "churn": churn, "extra_rtts": extra_rtts,
        "find_node": {
            "hops": summary([w.hops() for w in walks]),
            "rounds": summary([w.rounds() for w in walks]),
            "rpcs": summary([w.query.statistics().queried for w in walks]),
            "failed_rpcs": summary([w.query.statistics().failed for w in walks]),
            "seconds": summary([w.duration for w in walks]),
            "accuracy": statistics.fmean(acc for _, acc in found_nodes),
            "times": sorted(w.duration for w in walks),
        },
        "get_providers": {
            "hops": summary([w.hops() for w in found_providers]),
            "rpcs": summary([w.query.statistics().queried for w in found_providers]),
            "seconds": summary([w.duration for w in found_providers]),
            "found": statistics.fmean(bool(w.found) for w in found_providers),
        },
    }


# -- (c) a hot interest: load on the nodes that store it -------------------------------


def holder_hits(overlay: Overlay, samples: int, seed: int, records_per_key: int) -> dict:
    """Per walk: GET_PROVIDERS received by the holder of each rank (0 = closest), and in total."""
    net = Network(overlay, NetworkModel(), seed)
    hits = np.zeros(K_VALUE)
    total = 0
    providers = frozenset(i.to_bytes(4, "big") for i in range(min(records_per_key, ENOUGH_PROVIDERS)))
    for i in range(samples):
        key = topic(f"hot {seed} {i}").multihash
        holders = [int(n) for n in overlay.closest(key_point(key), K_VALUE)]
        walk = run_walks(net, [Walk(net, net.random_live_node(), key,
                                    dict.fromkeys(holders, providers))])[0]
        rank = {node: r for r, node in enumerate(holders)}
        for node in walk.contacted:
            if node in rank:
                hits[rank[node]] += 1
        total += len(walk.contacted)
    return {"per_rank": (hits / samples).tolist(), "rpcs": total / samples}


HOME = "probe one, then home"
"""The planner on a large network, for a topic known to be hot: every announcer is
listed on the home shard and on one random other shard; a search probes one
random other shard, then walks home (which lists everyone) if the probe found
nobody."""
HOME_NEW = "probe and home together"
"""The planner on a large network, for a topic not walked yet: both in one round."""
HOME_RARE = "home only"
"""The planner on a large network, for a topic known not to be hot (and on a small one)."""
HOME_POLICIES = (HOME, HOME_NEW, HOME_RARE)
SEARCH_ATTEMPTS = 5
"""Searches the time-to-match model lets a node run (a walk may miss a record under churn)."""
HOME_HOT = {HOME: True, HOME_NEW: None, HOME_RARE: False}
"""What the searcher learned of the topic before, under each of the node's
cases (``SearchPlanner.hot``): the planner, not this script, picks the rounds."""


def planner_search_cost(rng: random.Random, shards: int, advertisers: int, policy: str,
                        trials: int = 500) -> tuple[float, float]:
    """Mean rounds, and shards walked, of the node's first search on a large
    network (the real planner) when ``advertisers`` are each listed at home and
    on one random shard."""
    rounds = walks = 0
    with shard_count(shards):
        for _ in range(trials):
            outcome = simulate_search(
                rng, interest="rare interest", wall=NOW, rtt=0.0, large=True,
                listed=stranger_shards(rng, advertisers, large=True), hot=HOME_HOT[policy],
                walk_time=lambda _key, holds: (1.0, 0.0, holds))
            rounds += outcome.rounds
            walks += outcome.walks
    per_shard = len(topics.lookup_epochs(NOW))  # each shard is walked in every epoch looked up
    return rounds / trials, walks / trials / per_shard


def policies(shards: int) -> dict[str, list[int]]:
    """Searcher policies: how many shards each round walks, shards taken in a random order.

    A round walks the current and the previous epoch of each of its shards;
    the search stops after the first round that found candidates. For
    :data:`HOME` the schedule is the probe, then home (see ``home_position``).
    """
    fours = [4] * (shards // 4) + ([shards % 4] if shards % 4 else [])
    named = {HOME: [1, 1], HOME_NEW: [2], HOME_RARE: [1], "one at a time": [1] * shards,
             "probe one, then the rest": [1, shards - 1],
             "4 at a time": fours, "all at once": [shards]}
    if shards == 1:
        return {"one at a time": [1]}  # every policy is the same
    return named


def rounds_needed(schedule: list[int], position: int) -> tuple[int, int]:
    """Rounds, and shards walked, until the shard at ``position`` of the random order."""
    walked = 0
    for number, size in enumerate(schedule, 1):
        walked += size
        if position < walked:
            return number, walked
    raise ValueError(f"position {position!r} beyond the schedule {schedule!r}")


def home_probe_misses(shards: int, advertisers: int) -> float:
    """P(a probe of one random non-home shard finds none of ``advertisers``)."""
    return (1 - 1 / (shards - 1)) ** advertisers


def expected_search(rng: random.Random, shards: int, advertisers: int, schedule: list[int],
                    trials: int = 2000, policy: str = "") -> tuple[float, float]:
    """Mean rounds and shards walked when ``advertisers`` each listed on one random shard
    (and at home, under :data:`HOME`)."""
    if policy in HOME_POLICIES:
        return planner_search_cost(rng, shards, advertisers, policy, trials=min(trials, 500))
    if advertisers == 0:
        return float(len(schedule)), float(shards)
    if advertisers >= 20 * shards:
        return 1.0, float(schedule[0])  # P(a given shard is empty) = (1 - 1/S)^A < e^-20
    rounds = walked = 0
    for _ in range(trials):
        listed = {rng.randrange(shards) for _ in range(advertisers)}
        order = list(range(shards))
        rng.shuffle(order)
        spent = rounds_needed(schedule, next(i for i, shard in enumerate(order) if shard in listed))
        rounds += spent[0]
        walked += spent[1]
    return rounds / trials, walked / trials


def hot_load(overlay: Overlay, share: float, hits_full: dict, hits_sparse: dict,
             seed: int) -> list[dict]:
    """Per-node records and GET_PROVIDERS/s when ``share`` of all N users list one interest."""
    rng = random.Random(seed)
    users = int(share * overlay.size)
    # 10%: an interest ("music"); 100%: the general key, which every searching node lists
    interests, anyone = (("music",), False) if share < 1 else ((), True)
    searches_per_second = users / SEARCH_INTERVAL
    rows = []
    for shards in SHARD_COUNTS:
        with shard_count(shards):
            # what advertise_keys writes on each shard (home included), epoch-major
            topic_name = interests[0] if interests else None
            keys = [TopicKey(topic_name, epoch_at(NOW - ep * EPOCH_SECONDS), s).multihash
                    for ep in (0, 1) for s in range(shards)]
        draw = np.random.default_rng(seed + shards)
        counts = np.concatenate([draw.multinomial(users, [1 / shards] * shards) for _ep in (0, 1)])
        # one shard at a time, or a probe then the rest: a hot interest is found on the first shard
        rounds, walked = expected_search(rng, shards, users, policies(shards)["one at a time"])
        walk_rate = searches_per_second * walked / shards  # per key, each epoch
        # a search that walked every shard's key at once (not what the planner does)
        all_at_once = searches_per_second * np.array(hits_full["per_rank"]).max()
        records = np.zeros(overlay.size)
        capped = np.zeros(overlay.size)
        requests = np.zeros(overlay.size)
        reply_bytes = np.zeros(overlay.size)
        for key, stored in zip(keys, counts.tolist()):
            hits = hits_full if stored >= ENOUGH_PROVIDERS else hits_sparse
            holders = overlay.closest(key_point(key), K_VALUE)
            per_rank = np.array(hits["per_rank"]) * walk_rate
            records[holders] += stored
            capped[holders] += min(stored, PY_LIBP2P_PROVIDER_CAP)
            requests[holders] += per_rank
            reply_bytes[holders] += per_rank * stored * RECORD_BYTES
        listed = sum(min(c, PY_LIBP2P_PROVIDER_CAP) for c in counts[:shards].tolist())
        home = home_design_load(overlay, shards, keys, users, searches_per_second,
                                hits_full, hits_sparse, seed) if shards > 1 else None
        rows.append({
            "nodes": overlay.size, "share": share, "users": users, "shards": shards,
            "records_per_key": users / shards,
            "reply_kib": users / shards * RECORD_BYTES / 1024,
            "reply_over_client_limit": users / shards * RECORD_BYTES > MAX_KAD_MESSAGE,
            "records_max": float(records.max()), "records_p99": float(np.percentile(records, 99)),
            "records_capped_max": float(capped.max()),
            "listed_with_py_libp2p_cap": listed / users if users else 1.0,
            "get_providers_per_s_max": float(requests.max()),
            "get_providers_per_s_p99": float(np.percentile(requests, 99)),
            "get_providers_per_s_max_all_shards_at_once": float(all_at_once),
            "get_providers_per_s_mean_all_nodes": searches_per_second * walked * 2
                                                  * hits_full["rpcs"] / overlay.size,
            "reply_mib_per_s_max": float(reply_bytes.max()) / 2**20,
            "nodes_holding": int(np.count_nonzero(records)),
            # every listed user re-advertises within the planner's 1-120 s spread after the epoch turns
            "add_provider_burst_per_s": users / shards / (READVERTISE_JITTER[1] - READVERTISE_JITTER[0]),
            "lookups_per_search": 2 * walked,
            "home_design": home,
        })
    return rows


def home_design_load(overlay: Overlay, shards: int, keys: list[bytes], users: int,
                     searches_per_second: float, hits_full: dict, hits_sparse: dict,
                     seed: int) -> dict:
    """The same hot interest under :data:`HOME` (the planner on a large network).

    Every user is listed at home and on one of the ``shards - 1`` others; a
    search probes one random other shard (both epochs) and walks home only if
    the probe found nobody, which for a hot interest is
    ``home_probe_misses`` of the time.
    """
    draw = np.random.default_rng(seed + 1000 + shards)
    others = shards - 1
    miss = home_probe_misses(shards, users)
    requests = np.zeros(overlay.size)
    for ep in (0, 1):
        epoch_keys = keys[ep * shards:(ep + 1) * shards]  # shard order: home first
        counts = [users] + draw.multinomial(users, [1 / others] * others).tolist()
        rates = [searches_per_second * miss] + [searches_per_second / others] * others
        for key, stored, rate in zip(epoch_keys, counts, rates):
            hits = hits_full if stored >= ENOUGH_PROVIDERS else hits_sparse
            holders = overlay.closest(key_point(key), K_VALUE)
            requests[holders] += np.array(hits["per_rank"]) * rate
    return {
        "get_providers_per_s_max": float(requests.max()),
        "get_providers_per_s_p99": float(np.percentile(requests, 99)),
        "nodes_with_search_load": int(np.count_nonzero(requests > 0.01)),
        "probe_misses": miss,
        "lookups_per_search": 2 * (1 + miss),
        "home_records": users,
        "home_records_kept_by_strangers_nodes": min(users, MAX_RECORDS_PER_KEY),
        "home_add_provider_per_s": users / (READVERTISE_JITTER[1] - READVERTISE_JITTER[0]),
    }


def rare_interest_cost(seed: int) -> list[dict]:
    """Rounds and lookups per search for an interest with few advertisers, per policy."""
    rng = random.Random(seed)
    rows = []
    for shards in SHARD_COUNTS:
        for advertisers in (0, 1, 2, 5, 20):
            row: dict = {"shards": shards, "advertisers": advertisers}
            for name, schedule in policies(shards).items():
                rounds, walked = expected_search(rng, shards, advertisers, schedule, policy=name)
                row[name] = {"rounds": rounds, "lookups": 2 * walked}
            rows.append(row)
    return rows


# -- (d) time to match a waiting stranger ---------------------------------------------


def walk_pool(overlay: Overlay, churn: float, samples: int, seed: int,
              num_results: int = K_VALUE, enough_sources: int = ENOUGH_SOURCES) -> dict:
    """Durations of one search round: two concurrent provider walks (current + previous epoch).

    ``hit``: the stranger's record is under the current-epoch key, the previous
    one is empty; ``miss``: both keys are empty. A round lasts until both walks
    end (the "wait for all walks" rule);
    ``hit_early`` is when the walk that found the stranger ended (a round that
    returned at the first candidates would end there). ``num_results`` =
    SEARCH_CLOSEST is the variant where a provider walk also ends once the 5
    closest live peers have answered (an empty key then costs what a found
    one does, instead of a full walk to the 20 closest); the node's fast search
    walks also pass ``enough_sources=1`` (``search.FAST_WALK``).

    ``walk_hit`` and ``walk_miss`` hold each walk on its own: (seconds, RPCs,
    whether it returned the stranger), for ``search_sim.simulate_search``.
    """
    net = Network(overlay, NetworkModel(dead_fraction=churn), seed)
    stranger = overlay.ids[net.random_live_node()]
    durations: dict[str, list] = {"hit": [], "miss": [], "hit_walk_found": [],
                                  "hit_early": [], "hit_rpcs": [], "miss_rpcs": [],
                                  "walk_hit": [], "walk_miss": []}
    for i in range(samples):
        for kind in ("hit", "miss"):
            current, previous = (topic(f"rare {seed} {kind} {i}", epoch_offset=e).multihash
                                 for e in (0, 1))
            holders = overlay.closest(key_point(current), K_VALUE)
            records = {int(n): frozenset({stranger}) for n in holders} if kind == "hit" else {}
            origin = net.random_live_node()
            start = net.loop.now
            walks = run_walks(net, [
                Walk(net, origin, current, records, num_results=num_results,
                     enough_sources=enough_sources),
                Walk(net, origin, previous, {}, num_results=num_results,
                     enough_sources=enough_sources)])
            for walk, holds in zip(walks, (kind == "hit", False)):
                durations["walk_hit" if holds else "walk_miss"].append(
                    (walk.finished_at - start, len(walk.contacted), bool(walk.found)))
            durations[kind].append(max(w.finished_at for w in walks) - start)
            durations[f"{kind}_rpcs"].append(sum(len(w.contacted) for w in walks))
            if kind == "hit":
                durations["hit_walk_found"].append(float(bool(walks[0].found)))
                durations["hit_early"].append(walks[0].finished_at - start)
    return durations


def handshake(rng: random.Random, interest: str) -> bool:
    """The matching decision of both sides, with the real Matcher: True if they match."""
    searcher = Matcher(local_id=b"searcher", interests=(interest,))
    stranger = Matcher(local_id=b"stranger", interests=(interest,))
    searcher.start_search(0.0)
    stranger.start_search(-30.0)
    chosen = searcher.choose_candidate({b"stranger": (interest,)}, 1.0, rng)
    if chosen is None:
        return False
    searcher.propose(chosen)
    decision = stranger.on_proposal(b"searcher", searcher.interests, 1.0)
    if decision.accept:
        searcher.proposal_accepted(chosen)
    return decision.accept


def time_to_match(wide: dict, narrow: dict, shards: int, policy: str, trials: int, seed: int,
                  model: NetworkModel = NetworkModel()) -> dict:
    """Search (shards in random order, rounds as in ``policies``) + proposal + chat open.

    Round durations are resampled from simulated pairs of walks (``wide``:
    kad.py's walks; ``narrow``: walks that end when the SEARCH_CLOSEST closest answered);
    a round of b shards is b pairs in parallel. Three round rules:

    * ``wait_all``: a round lasts until its slowest walk ends (the node before shards);
    * ``first_candidates``: it ends when the walk holding the stranger ends;
    * ``narrow``: first_candidates, with narrow walks.

    The handshake costs one proposal RTT + one chat-open RTT between the two
    (the Matcher decides); ``wait_all_fresh_connection`` adds the 6 RTT of a
    fresh connection (TCP, multistream, Noise XX, multistream, Yamux stream,
    chat hello) on top.

    The node's own cases (:data:`HOME_POLICIES`) are not modelled here: the
    real planner runs the search (``search_sim.simulate_search``), over walks
    drawn one by one from the same pools.
    """
    rng = random.Random(seed)
    schedule = policies(shards)[policy]
    times: dict[str, list[float]] = {"wait_all": [], "first_candidates": [], "narrow": [],
                                     "wait_all_fresh_connection": []}
    rpcs: dict[str, list[float]] = {"wide": [], "narrow": []}
    if policy in HOME_POLICIES:
        with shard_count(shards):
            for _ in range(trials):
                rtt = model.rtt(rng)
                # the stranger is listed at home and on its own shard
                listed = {HOME_SHARD, topics.draw_shard(rng)}
                outcomes = {}
                for name, pool, cut in (("wait_all", wide, False), ("first_candidates", wide, True),
                                        ("narrow", narrow, True)):
                    def walk_time(_key, holds, pool=pool):
                        drawn = pool["walk_hit" if holds else "walk_miss"]
                        return drawn[rng.randrange(len(drawn))]

                    # a walk that misses the record (churn) is followed by the next search
                    outcomes[name] = simulate_search(
                        rng, interest="rare interest", wall=NOW, listed=listed,
                        walk_time=walk_time, rtt=rtt, large=True, hot=HOME_HOT[policy],
                        cut=cut, attempts=SEARCH_ATTEMPTS)
                for name, outcome in outcomes.items():  # + the chat-open RTT
                    times[name].append(outcome.seconds + rtt)
                times["wait_all_fresh_connection"].append(outcomes["wait_all"].seconds + 7 * rtt)
                rpcs["wide"].append(outcomes["wait_all"].rpcs)
                rpcs["narrow"].append(outcomes["narrow"].rpcs)
        return {"shards": shards, "policy": policy,
                "seconds": {name: summary(values) for name, values in times.items()},
                "rpcs_per_search": {name: statistics.fmean(values) for name, values in rpcs.items()}}
    for _ in range(trials):
        order = list(range(shards))
        rng.shuffle(order)
        position = order.index(rng.randrange(shards))
        searched = {}
        for name, pool in (("wide", wide), ("narrow", narrow)):
            elapsed = first = spent = 0.0
            last, _walked = rounds_needed(schedule, position)
            for number, pairs in enumerate(schedule[:last], 1):
                misses = [rng.randrange(len(pool["miss"])) for _ in range(pairs)]
                durations = [pool["miss"][i] for i in misses]
                spent += sum(pool["miss_rpcs"][i] for i in misses)
                if number == last:
                    hit = rng.randrange(len(pool["hit"]))
                    durations[-1] = pool["hit"][hit]
                    spent += pool["hit_rpcs"][hit] - pool["miss_rpcs"][misses[-1]]
                    first = elapsed + pool["hit_early"][hit]
                elapsed += max(durations)
            searched[name] = (elapsed, first)
            rpcs[name].append(spent)
        if not handshake(rng, "rare interest"):
            raise AssertionError("the matcher refused a stranger who shares the interest")
        rtt = model.rtt(rng)
        times["wait_all"].append(searched["wide"][0] + 2 * rtt)
        times["wait_all_fresh_connection"].append(searched["wide"][0] + 8 * rtt)
        times["first_candidates"].append(searched["wide"][1] + 2 * rtt)
        times["narrow"].append(searched["narrow"][1] + 2 * rtt)
    return {"shards": shards, "policy": policy,
            "seconds": {name: summary(values) for name, values in times.items()},
            "rpcs_per_search": {name: statistics.fmean(values) for name, values in rpcs.items()}}


# -- output -------------------------------------------------------------------------


def format_tables(result: dict) -> str:
    """The markdown tables of docs/scale.md."""
    lines = ["### Lookups (FIND_NODE walks to random topic keys)", "",
             "| N | dead | hops mean | rounds mean (p90) | RPCs med (p90) | failed RPCs med "
             "| time med | time p90 | 20-closest found |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["lookups"]:
        f = row["find_node"]
        lines.append(
            f"| {row['nodes']:,} | {row['churn']:.0%}"
            f"{' +%d RTT/RPC' % row['extra_rtts'] if row['extra_rtts'] else ''}"
            f" | {f['hops']['mean']:.2f} | {f['rounds']['mean']:.2f} ({f['rounds']['p90']:.0f})"
            f" | {f['rpcs']['median']:.0f} ({f['rpcs']['p90']:.0f}) | {f['failed_rpcs']['median']:.0f}"
            f" | {f['seconds']['median']:.2f} s | {f['seconds']['p90']:.2f} s | {f['accuracy']:.0%} |")
    lines += ["", "### Provider walks (GET_PROVIDERS, key with one record, kad.py stop rules)", "",
              "| N | dead | hops to first holder mean | RPCs med (p90) | time med | time p90 | found |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["lookups"]:
        g = row["get_providers"]
        lines.append(
            f"| {row['nodes']:,} | {row['churn']:.0%}"
            f"{' +%d RTT/RPC' % row['extra_rtts'] if row['extra_rtts'] else ''}"
            f" | {g['hops']['mean']:.2f} | {g['rpcs']['median']:.0f} ({g['rpcs']['p90']:.0f})"
            f" | {g['seconds']['median']:.2f} s | {g['seconds']['p90']:.2f} s | {g['found']:.0%} |")
    lines += ["", f"### Hot interest (one search per user per {SEARCH_INTERVAL:.0f} s)", "",
              "| N | users listed | S | records/key | reply (uncapped) | max records/node (uncapped) "
              "| max GET_PROVIDERS/s/node | p99 | mean, all nodes | max reply MiB/s/node "
              "| nodes holding | listed under py-libp2p cap | lookups/search "
              "| max GET_PROVIDERS/s, all shards at once | ADD_PROVIDER/s per holder at epoch start |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["hot"]:
        too_big = " (> 256 KiB: fails)" if row["reply_over_client_limit"] else ""
        lines.append(
            f"| {row['nodes']:,} | {row['users']:,} ({row['share']:.0%}) | {row['shards']}"
            f" | {row['records_per_key']:,.0f} | {row['reply_kib']:,.0f} KiB{too_big}"
            f" | {row['records_max']:,.0f} | {row['get_providers_per_s_max']:.1f}"
            f" | {row['get_providers_per_s_p99']:.2f} | {row['get_providers_per_s_mean_all_nodes']:.3f}"
            f" | {row['reply_mib_per_s_max']:.2f} | {row['nodes_holding']:,}"
            f" | {row['listed_with_py_libp2p_cap']:.1%} | {row['lookups_per_search']:.1f}"
            f" | {row['get_providers_per_s_max_all_shards_at_once']:.1f}"
            f" | {row['add_provider_burst_per_s']:,.0f} |")
    lines += ["", f"### Hot interest under \"{HOME}\" (the planner on a large network)", "",
              "| N | users listed | S | max GET_PROVIDERS/s/node | p99 | nodes with search load "
              "| lookups/search | home: records (kept by strangers nodes) "
              "| home: ADD_PROVIDER/s per holder at epoch start |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["hot"]:
        home = row["home_design"]
        if home is None:
            continue
        lines.append(
            f"| {row['nodes']:,} | {row['users']:,} ({row['share']:.0%}) | {row['shards']}"
            f" | {home['get_providers_per_s_max']:.1f} | {home['get_providers_per_s_p99']:.2f}"
            f" | {home['nodes_with_search_load']:,} | {home['lookups_per_search']:.1f}"
            f" | {home['home_records']:,} ({home['home_records_kept_by_strangers_nodes']})"
            f" | {home['home_add_provider_per_s']:,.0f} |")
    names = (*HOME_POLICIES, "one at a time", "probe one, then the rest", "4 at a time", "all at once")
    lines += ["", "### Rounds / lookups per search for an interest with few advertisers", "",
              "| S | advertisers | " + " | ".join(names) + " |", "|---:|---:|" + "---:|" * len(names)]
    for row in result["rare"]:
        cells = " | ".join(f"{row[name]['rounds']:.1f} / {row[name]['lookups']:.1f}"
                           if name in row else "same" for name in names)
        lines.append(f"| {row['shards']} | {row['advertisers']} | {cells} |")
    lines += ["", "### Time to match one waiting stranger (search + proposal RTT + chat-open RTT)", "",
              "| N | dead | S | policy | wait for all walks, med (p90) "
              f"| end round at first candidates | + walks end at {SEARCH_CLOSEST} closest (the node) | RPCs/search "
              f"(K-closest walks) | RPCs/search ({SEARCH_CLOSEST}-closest walks) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["match"]:
        cells = " | ".join(f"{row['seconds'][name]['median']:.2f} s ({row['seconds'][name]['p90']:.2f} s)"
                           for name in ("wait_all", "first_candidates", "narrow"))
        lines.append(f"| {row['nodes']:,} | {row['churn']:.0%} | {row['shards']} | {row['policy']}"
                     f" | {cells} | {row['rpcs_per_search']['wide']:.0f}"
                     f" | {row['rpcs_per_search']['narrow']:.0f} |")
    return "\n".join(lines)


def plot(result: dict, img_dir: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    written = []
    plain = [row for row in result["lookups"] if not row["extra_rtts"]]
    churns = sorted({row["churn"] for row in plain})
    styles = dict(zip(churns, ["-", "--", ":"]))

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for churn in churns:
        rows = sorted((r for r in plain if r["churn"] == churn), key=lambda r: r["nodes"])
        sizes = [r["nodes"] for r in rows]
        for axis, metric in ((left, "hops"), (left, "rounds"), (right, "rpcs")):
            values = [r["find_node"][metric]["mean"] for r in rows]
            axis.plot(sizes, values, styles[churn], marker="o",
                      label=f"{metric}, {churn:.0%} dead")
    for axis, title in ((left, "hops / rounds per lookup (mean)"), (right, "RPCs per lookup (mean)")):
        axis.set_xscale("log")
        axis.set_xlabel("DHT nodes N (log scale)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(img_dir / "sim_hops_vs_n.png", dpi=110)
    written.append("sim_hops_vs_n.png")

    figure, axis = plt.subplots(figsize=(7, 4))
    for row in result["lookups"]:
        times = row["find_node"]["times"]
        label = f"N={row['nodes']:,}, {row['churn']:.0%} dead"
        if row["extra_rtts"]:
            label += f", +{row['extra_rtts']} RTT/RPC"
        axis.plot(times, np.arange(1, len(times) + 1) / len(times),
                  styles.get(row["churn"], "-") if not row["extra_rtts"] else "-.", label=label)
    axis.set_xlabel("FIND_NODE lookup time (s)")
    axis.set_ylabel("fraction of lookups")
    axis.set_title("Lookup time CDF (one-way latency U[20, 200] ms, timeout 2 s)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(img_dir / "sim_lookup_time_cdf.png", dpi=110)
    written.append("sim_lookup_time_cdf.png")

    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for size in sorted({row["nodes"] for row in result["hot"]}):
        for share, style in ((0.1, "-"), (1.0, "--")):
            rows = [r for r in result["hot"] if r["nodes"] == size and r["share"] == share]
            if not rows:
                continue
            shards = [r["shards"] for r in rows]
            label = f"N={size:,}, {share:.0%} of users"
            axes[0].plot(shards, [r["get_providers_per_s_max"] for r in rows], style, marker="o", label=label)
            axes[1].plot(shards, [r["records_max"] for r in rows], style, marker="o", label=label)
    for advertisers, color in ((1, "C0"), (5, "C1"), (20, "C2")):
        rows = [r for r in result["rare"] if r["advertisers"] == advertisers]
        for name, style in (("one at a time", "-"), ("probe one, then the rest", "--")):
            axes[2].plot([r["shards"] for r in rows],
                         [r.get(name, r["one at a time"])["lookups"] for r in rows], style, color=color,
                         marker="o", label=f"{advertisers} advertiser(s), {name}")
    rows = [r for r in result["rare"] if r["advertisers"] == 1]
    axes[2].plot([r["shards"] for r in rows],
                 [r.get("all at once", r["one at a time"])["lookups"] for r in rows], "k:",
                 label="all shards at once")
    axes[0].axhline(20, color="grey", linewidth=0.8)
    axes[0].annotate("20/s", (1, 20), textcoords="offset points", xytext=(2, 3), fontsize=7, color="grey")
    titles = ("max GET_PROVIDERS/s on one node", "max records on one node (uncapped)",
              "lookups per search, rare interest")
    for axis, title in zip(axes, titles):
        axis.set_xscale("log", base=2)
        axis.set_xticks(SHARD_COUNTS, [str(n) for n in SHARD_COUNTS])
        axis.set_yscale("log")
        axis.set_xlabel("shards S")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(img_dir / "sim_hot_interest_load.png", dpi=110)
    written.append("sim_hot_interest_load.png")

    size = max(row["nodes"] for row in result["match"])
    labels = {"wait_all": "round waits for every walk",
              "first_candidates": "round ends at first candidates",
              "narrow": f"first candidates + walks end at {SEARCH_CLOSEST} closest"}
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for churn in sorted({row["churn"] for row in result["match"]}):
        def of(policy: str, churn: float = churn) -> list[dict]:
            return [r for r in result["match"]
                    if r["nodes"] == size and r["churn"] == churn
                    and (r["policy"] == policy or r["shards"] == 1)]
        for axis, series in (
            (left, [(name, "one at a time", label, color)
                    for (name, label), color in zip(labels.items(), ("C0", "C1", "C2"))]),
            (right, [("narrow", policy, policy, color) for policy, color in
                     ((HOME, "C6"), (HOME_NEW, "C7"), ("one at a time", "C2"),
                      ("probe one, then the rest", "C3"),
                      ("4 at a time", "C4"), ("all at once", "C5"))]),
        ):
            for name, policy, label, color in series:
                rows = of(policy)
                medians = [r["seconds"][name]["median"] for r in rows]
                axis.errorbar([r["shards"] for r in rows], medians,
                              yerr=[[0] * len(rows),
                                    [r["seconds"][name]["p90"] - m for r, m in zip(rows, medians)]],
                              marker="o", capsize=3, color=color, linestyle=styles.get(churn, "-"),
                              label=f"{churn:.0%} dead, {label}")
    left.set_title(f"one shard per round: round rules (N={size:,})", fontsize=10)
    right.set_title(f"first candidates + 3-closest walks: shard policies (N={size:,})", fontsize=10)
    left.set_ylabel("time to match the one waiting stranger (s): median, bar up to p90")
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(SHARD_COUNTS, [str(n) for n in SHARD_COUNTS])
        axis.set_xlabel("shards S")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(img_dir / "sim_time_to_match.png", dpi=110)
    written.append("sim_time_to_match.png")
    plt.close("all")
    return written


# -- main -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small networks, few samples, no plots unless --img-dir (< 1 min)")
    parser.add_argument("--sizes", type=int, nargs="+", help="network sizes (default 1000 10000 100000)")
    parser.add_argument("--samples", type=int, help="walks per configuration (default 500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--img-dir", type=Path, help="where the PNGs go (default docs/img)")
    args = parser.parse_args()
    sizes = args.sizes or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    samples = args.samples or (30 if args.quick else 500)
    churns = (0.0, 0.1, 0.3)
    match_sizes = [n for n in sizes if n in (10000, 100000)] or sizes[-1:]
    began = time.perf_counter()
    result: dict = {
        "model": {
            "one_way_latency_s": "uniform [0.020, 0.200] per direction per RPC",
            "peer_timeout_s": RPC_TIMEOUT, "k": K_VALUE, "alpha": ALPHA,
            "enough_providers": ENOUGH_PROVIDERS, "enough_sources": ENOUGH_SOURCES,
            "search_closest": SEARCH_CLOSEST,
            "record_bytes": RECORD_BYTES, "search_interval_s": SEARCH_INTERVAL,
            "samples": samples, "seed": args.seed,
        },
        "build_seconds": {}, "lookups": [], "holder_hits": {}, "hot": [], "rare": [], "match": [],
    }
    for size in sizes:
        started = time.perf_counter()
        overlay = Overlay(size, np.random.default_rng(args.seed + size))
        built = time.perf_counter() - started
        result["build_seconds"][size] = built
        log(f"N={size:,}: routing tables built in {built:.1f} s "
            f"({len(overlay.table) / size:.0f} entries per node)")
        for churn in churns:
            row = lookup_scaling(overlay, churn, samples, args.seed)
            result["lookups"].append(row)
            log(f"  lookups, {churn:.0%} dead: rpcs median {row['find_node']['rpcs']['median']}, "
                f"time median {row['find_node']['seconds']['median']:.2f} s")
        if size == sizes[-1]:
            row = lookup_scaling(overlay, 0.1, max(samples // 2, 10), args.seed, extra_rtts=4)
            result["lookups"].append(row)
        if size >= 10000 or size == sizes[-1]:
            full = holder_hits(overlay, samples, args.seed, ENOUGH_PROVIDERS)
            sparse = holder_hits(overlay, samples, args.seed + 1, 1)
            result["holder_hits"][size] = {"20_or_more_records": full, "one_record": sparse}
            for share in (0.1, 1.0):
                result["hot"] += hot_load(overlay, share, full, sparse, args.seed)
            log(f"  hot interest done ({time.perf_counter() - began:.0f} s so far)")
        if size in match_sizes:
            for churn in churns:
                wide = walk_pool(overlay, churn, samples, args.seed)
                # what a node's fast search walks pass to StrangersDHT.lookup (the planner's)
                narrow = walk_pool(overlay, churn, samples, args.seed, num_results=FAST_NUM_RESULTS,
                                   enough_sources=FAST_ENOUGH_SOURCES)
                for shards in SHARD_COUNTS:
                    for policy in policies(shards):
                        row = time_to_match(wide, narrow, shards, policy, 2000, args.seed)
                        row.update(nodes=size, churn=churn,
                                   found=statistics.fmean(wide["hit_walk_found"]),
                                   found_narrow=statistics.fmean(narrow["hit_walk_found"]))
                        result["match"].append(row)
            log(f"  time to match done ({time.perf_counter() - began:.0f} s so far)")
        del overlay
    result["rare"] = rare_interest_cost(args.seed)
    if not args.no_plots and (args.img_dir or not args.quick):
        img_dir = args.img_dir or Path(__file__).resolve().parent.parent / "docs" / "img"
        result["plots"] = plot(result, img_dir)
    result["runtime_seconds"] = time.perf_counter() - began
    for row in result["lookups"]:
        del row["find_node"]["times"]  # plotted; too long for the JSON
    log(format_tables(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
