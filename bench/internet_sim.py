"""Time to match on the internet, by simulation: the node's own policy over a calibrated network.

    python bench/internet_sim.py [--quick] [--nodes 10000] [--trials 400] [--seed 1]
                                 [--connect-round-trips 6] [--stream-round-trips 2] ...

One stranger waits, listed under an interest; a searcher looks for it. The
searcher is **fresh** (just launched: it knows one seed, dials it, and its
routing table is what its walks teach it), **returning** (just launched with
a cache of servers met before: it dials the 8 the node picks,
``ServerCache.first_tries``, the closest to its first search's keys and the
newest) or **warm** (running for a while: a full routing table, connections
open to its table's peers, a round-trip estimate). Everything the node decides comes from the node's pure modules:
the search planner and matcher (``discovery/search.py``, ``matcher.py``,
through ``bench/search_sim.py``), the lookup (``discovery/lookup.py``, driven
as ``StrangersDHT.lookup`` drives it, stop rules included), the timeouts
(``discovery/rtt.py``). What the network does comes from ``bench/netmodel.py``:
round trips by connection state, log-normal per-node latency, loss with TCP's
retransmission timers, NATed strangers behind a relay, dead routing-table
entries, strangers who give up waiting.

Reports the match success rate (within 10 s and within ``--give-up``) and the
time to match, fresh, returning and warm, and its parts (bootstrap, search, proposal,
chat). ``--connect-round-trips`` etc. plug in the savings of issue 13 item 1;
``--before`` runs them all at once. Needs numpy (the overlay of
``bench/simulate.py``). Prints JSON on stdout, a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace

import netmodel
import numpy as np
from benchstats import fit_round_trips
from netmodel import (
    ENOUGH_PROVIDERS,
    RPC_CONNECTED,
    RPC_DIAL,
    Connections,
    Endpoint,
    InternetModel,
    RoundTrips,
)
from search_sim import simulate_search
from simulate import EventLoop, Overlay, key_point, percentile

from strangers.discovery import frontdoor, search, topics
from strangers.discovery import rtt as rtt_policy
from strangers.discovery.frontdoor import CACHE_TRIES, CLOSEST_TRIES, MAX_SERVERS
from strangers.discovery.lookup import K_VALUE, ClosestPeersQuery
from strangers.discovery.matcher import Matcher
from strangers.discovery.search import LARGE_NETWORK_TABLE
from strangers.discovery.topics import EPOCH_SECONDS, HOME_SHARD, TopicKey, draw_shard, epoch_at

INTEREST = "rare interest"
STRANGER_ADVERTISES_ANYONE = Matcher(local_id=b"stranger", interests=(INTEREST,)).advertises_anyone
"""A user started with defaults (not ``--interests-only``) is listed under the anyone key too."""
WALL = (1_800_000_000 // EPOCH_SECONDS) * EPOCH_SECONDS + 600.0
"""Ten minutes into an epoch: searches walk the current epoch only (topics.lookup_epochs)."""
SEARCHERS = ("fresh", "returning", "warm")
"""Fresh: a first launch with one seed. Returning: a launch with a cache of servers met
before (``servers.json``), dialling the ``CACHE_TRIES`` the node picks. Warm: up for a while."""


@dataclass
class Searcher:
    """The searching node: its endpoint, connections, and routing table (overlay indices)."""

    me: Endpoint
    conns: Connections = field(default_factory=Connections)
    table: set[int] = field(default_factory=set)


class World:
    """The overlay (public DHT servers) with endpoints, and the waiting stranger."""

    def __init__(self, overlay: Overlay, model: InternetModel, seed: int) -> None:
        self.overlay = overlay
        self.model = model
        self.rng = random.Random(seed)
        self.endpoints = [Endpoint(model.latency.draw(self.rng),
                                   alive=self.rng.random() >= model.dead)
                          for _ in range(overlay.size)]
        self.live = [i for i, e in enumerate(self.endpoints) if e.alive]

    def random_live(self) -> int:
        return self.live[self.rng.randrange(len(self.live))]

    def first_tries(self, cache: list[int]) -> list[int]:
        """The servers a returning user's launch dials, out of its ``cache`` (newest first),
        as the node picks them (``ServerCache.first_tries``; dead ones included: a cache
        ages): the closest to its first search's keys, then the newest."""
        keys = topics.first_search_keys((INTEREST,), now=WALL)
        overlay = self.overlay
        chosen = frontdoor.first_tries(
            cache, keys, lambda node, key: int(overlay.keys[node] ^ key_point(key)),
            min(CLOSEST_TRIES, CACHE_TRIES))
        return chosen + [node for node in cache if node not in chosen][:CACHE_TRIES - len(chosen)]

    # -- one walk, as StrangersDHT.lookup runs it -----------------------------------

    def walk(self, searcher: Searcher, key: bytes, records: set[int], start: float,
             enough_sources: int, num_results: int) -> tuple[float, int, bool]:
        """(seconds, RPCs, found) of a provider walk to ``key`` whose records sit on ``records``."""
        overlay, rng, model = self.overlay, self.rng, self.model
        point = key_point(key)
        known = np.fromiter(searcher.table, dtype=np.int64)
        seeds = known[np.argsort(overlay.keys[known] ^ point)[:K_VALUE]] if len(known) else known
        query = ClosestPeersQuery(key, [overlay.ids[n] for n in seeds],
                                  local_id=b"searcher", num_results=num_results,
                                  peer_timeout=RPC_DIAL.ceiling + 1.0)
        loop = EventLoop()
        loop.now = start
        state = {"sources": 0, "found": 0, "done": None, "rpcs": 0}

        def pump() -> None:
            if state["done"] is not None:
                return
            for peer in query.next(loop.now):
                node = overlay.index[peer]
                state["rpcs"] += 1
                outcome = netmodel.request(rng, model, searcher.conns, searcher.me,
                                           self.endpoints[node], node, loop.now,
                                           RPC_CONNECTED, RPC_DIAL)
                loop.call_at(loop.now + outcome.seconds,
                             (lambda p=peer, n=node: answer(p, n)) if outcome.ok
                             else (lambda p=peer, n=node: fail(p, n)))
            # kad.py's three exits, in its order
            if (query.finished or (state["found"] and (
                    state["found"] >= ENOUGH_PROVIDERS or state["sources"] >= enough_sources))
                    or query.next_deadline() is None):
                state["done"] = loop.now

        def answer(peer: bytes, node: int) -> None:
            if state["done"] is not None:
                return
            closer = overlay.closest_in_table(node, point)
            searcher.table.add(node)
            query.on_success(peer, [overlay.ids[n] for n in closer])
            if node in records:
                state["sources"] += 1
                state["found"] = 1  # the one waiting stranger
            pump()

        def fail(peer: bytes, node: int) -> None:
            if state["done"] is not None:
                return
            searcher.table.discard(node)
            query.on_failure(peer)
            pump()

        pump()
        loop.run()
        done = state["done"] if state["done"] is not None else loop.now
        return done - start, state["rpcs"], bool(state["found"])


@dataclass(frozen=True)
class Trial:
    matched: bool
    seconds: float
    """From launch (fresh) or from the start of the search (warm) to the match, or to giving up."""
    bootstrap: float
    search: float
    """From the start of the search to the accepted proposal's answer."""
    chat: float
    rounds: int
    rpcs: float
    proposals: int
    stranger_unreachable: bool


def one_trial(world: World, *, fresh: bool, give_up: float, everyone_holds: bool = False,
              relay_is_seed: bool = False, cached: bool = False) -> Trial:
    rng, model, overlay = world.rng, world.model, world.overlay
    # the waiting stranger: a user, maybe behind a NAT (then reached through its relay)
    stranger = Endpoint(model.latency.draw(rng), reachable=rng.random() >= model.unreachable)
    seed = world.random_live()
    if not stranger.reachable:
        # its relay: any DHT server (the searcher's own seed in the namespace topology)
        stranger.relay_id = seed if relay_is_seed else world.random_live()
        stranger.relay = world.endpoints[stranger.relay_id]
    leaves_at = rng.expovariate(1 / model.mean_wait)
    stranger_id = overlay.size  # not a DHT server
    # its records: under its interest and (a default user) the anyone key, at home and,
    # on a large network, on one other shard; each on the K closest peers of the key
    # (stored before some of them left)
    listed = {HOME_SHARD}
    if len(overlay.table_of(0)) >= LARGE_NETWORK_TABLE:
        listed.add(draw_shard(rng))
    topics_listed = (INTEREST, None) if STRANGER_ADVERTISES_ANYONE else (INTEREST,)
    records_of = {}
    for topic in topics_listed:
        for shard in listed:
            key = TopicKey(topic, epoch_at(WALL), shard).multihash
            records_of[key] = (set(range(overlay.size)) if everyone_holds else
                               {int(n) for n in overlay.closest(key_point(key), K_VALUE)})
    searcher = Searcher(Endpoint(model.latency.draw(rng)))
    bootstrap = 0.0
    if fresh and cached:
        # a returning user's launch: the cache's servers closest to its first search's keys,
        # then the newest (ServerCache.first_tries), dialled at once; ready at the first answer
        seeds = world.first_tries([int(n) for n in rng.sample(range(overlay.size), MAX_SERVERS)])
        answered = []
        for node in seeds:
            outcome = netmodel.connect(rng, model, searcher.conns, searcher.me,
                                       world.endpoints[node], node, 0.0,
                                       rtt_policy.bootstrap_dial_timeout(
                                           searcher.conns.estimator, netmodel.peer_key(node), 0.0))
            if outcome.ok:
                answered.append(outcome.seconds)
                searcher.table.add(node)
        if not answered:
            return Trial(False, 5.0, 5.0, 0.0, 0.0, 0, 0, 0, not stranger.reachable)
        bootstrap = min(answered)
    elif fresh:
        # the node's first attempt, with no sample yet (connect_seeds)
        outcome = netmodel.connect(rng, model, searcher.conns, searcher.me, world.endpoints[seed],
                                   seed, 0.0, rtt_policy.bootstrap_dial_timeout(
                                       searcher.conns.estimator, netmodel.peer_key(seed), 0.0))
        bootstrap = outcome.seconds
        if not outcome.ok:
            return Trial(False, bootstrap, bootstrap, 0.0, 0.0, 0, 0, 0, not stranger.reachable)
        searcher.table.add(seed)
    else:
        origin = world.random_live()
        searcher.table = {int(n) for n in overlay.table_of(origin)}
        for peer in searcher.table:  # connections open (streams idle long ago), RTTs known
            searcher.conns.connect(peer)
            if world.endpoints[peer].alive:
                sample = netmodel.path_rtt(searcher.me, world.endpoints[peer])
                searcher.conns.estimator.observe(peer.to_bytes(8, "big"), sample, -60.0)
    proposals = 0

    def walk_at(action: search.Walk, key: TopicKey, holds: bool, now: float):
        records = records_of.get(key.multihash, set()) if holds else set()
        return world.walk(searcher, key.multihash, records, bootstrap + now,
                          action.enough_sources, action.num_results)

    def propose_at(now: float):
        nonlocal proposals
        proposals += 1
        stranger.alive = bootstrap + now < leaves_at
        outcome = netmodel.propose(rng, model, searcher.conns, searcher.me, stranger,
                                   stranger_id, bootstrap + now)
        return outcome.seconds, outcome.ok

    outcome = simulate_search(
        rng, interest=INTEREST, wall=WALL, listed=listed, walk_at=walk_at,
        propose_at=propose_at, table_size=lambda: len(searcher.table),
        attempts=10_000, give_up=give_up - bootstrap)
    if not outcome.matched:
        return Trial(False, min(give_up, bootstrap + outcome.seconds), bootstrap, outcome.seconds,
                     0.0, outcome.rounds, outcome.rpcs, proposals, not stranger.reachable)
    chat = netmodel.open_chat(rng, model, searcher.conns, searcher.me, stranger, stranger_id)
    total = bootstrap + outcome.seconds + chat.seconds
    return Trial(chat.ok and total <= give_up, total, bootstrap, outcome.seconds, chat.seconds,
                 outcome.rounds, outcome.rpcs, proposals, not stranger.reachable)


def spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"median": round(statistics.median(values), 3), "p10": round(percentile(values, 0.1), 3),
            "p90": round(percentile(values, 0.9), 3), "n": len(values)}


def run_case(world: World, *, fresh: bool, trials: int, give_up: float,
             everyone_holds: bool = False, relay_is_seed: bool = False,
             cached: bool = False) -> dict:
    results = [one_trial(world, fresh=fresh, give_up=give_up, everyone_holds=everyone_holds,
                         relay_is_seed=relay_is_seed, cached=cached) for _ in range(trials)]
    matched = [t for t in results if t.matched]
    direct = [t for t in matched if not t.stranger_unreachable]
    relayed = [t for t in matched if t.stranger_unreachable]
    return {
        "trials": trials,
        "matched": len(matched) / trials,
        "matched_within_10s": sum(t.seconds <= 10 for t in matched) / trials,
        "seconds": spread([t.seconds for t in matched]),
        "seconds_direct": spread([t.seconds for t in direct]),
        "seconds_relayed": spread([t.seconds for t in relayed]),
        "bootstrap": spread([t.bootstrap for t in matched]),
        "ready_to_matched": spread([t.seconds - t.bootstrap for t in matched]),
        "search_to_accept": spread([t.search for t in matched]),
        "chat_open": spread([t.chat for t in matched]),
        "rounds": statistics.fmean(t.rounds for t in matched) if matched else None,
        "rpcs": statistics.fmean(t.rpcs for t in matched) if matched else None,
        "proposals": statistics.fmean(t.proposals for t in matched) if matched else None,
    }


def calibrate(args: argparse.Namespace, trips: RoundTrips, trials: int) -> dict:
    """Predicted ready -> matched of bench/run.py's "waiting" scenario, per RTT, and the fit."""
    overlay = Overlay(K_VALUE + 1, np.random.default_rng(args.seed))
    result: dict = {"round_trips": asdict(trips)}
    # direct: what the topology was for; relayed: what the nodes make of it since
    # AutoNAT judges them unreachable (the proxy connects onward from the router's
    # address), so the joiner reaches the stranger through the seed's relay
    for label, unreachable in (("direct", 0.0), ("relayed through the seed", 1.0)):
        rows = []
        for rtt_ms in (int(text) for text in args.calibrate.split(",")):
            latency = netmodel.Latency(median=max(rtt_ms / 2000, 1e-6), sigma=0.0, floor=0.0)
            model = InternetModel(round_trips=trips, latency=latency,
                                  loss=args.loss if rtt_ms else 0.0, unreachable=unreachable,
                                  dead=0.0, mean_wait=1e9)
            row = run_case(World(overlay, model, args.seed), fresh=True, trials=trials,
                           give_up=args.give_up, everyone_holds=True, relay_is_seed=True)
            rows.append({"rtt_ms": rtt_ms, "ready_to_matched": row["ready_to_matched"],
                         "bootstrap": row["bootstrap"], "matched": row["matched"]})
            print(f"calibration, {label}, {rtt_ms} ms: ready -> matched "
                  f"{row['ready_to_matched']}", file=sys.stderr)
        points = [(row["rtt_ms"] / 1000, row["ready_to_matched"]["median"]) for row in rows
                  if row["ready_to_matched"]["n"]]
        result[label] = {"rows": rows, "fit": fit_round_trips(points)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 nodes, 60 trials (~20 s)")
    parser.add_argument("--nodes", type=int, nargs="+", help="DHT sizes (default 1000 10000)")
    parser.add_argument("--trials", type=int, help="trials per case (default 400)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--give-up", type=float, default=30.0)
    defaults = InternetModel()
    parser.add_argument("--loss", type=float, default=defaults.loss)
    parser.add_argument("--unreachable", type=float, default=defaults.unreachable)
    parser.add_argument("--dead", type=float, default=defaults.dead)
    parser.add_argument("--mean-wait", type=float, default=defaults.mean_wait)
    parser.add_argument("--median-rtt", type=float, default=2 * defaults.latency.median,
                        help="seconds; a path's median round trip (two nodes' distances)")
    parser.add_argument("--connect-round-trips", type=float, default=netmodel.TODAY.connect)
    parser.add_argument("--stream-round-trips", type=float, default=netmodel.TODAY.stream)
    parser.add_argument("--chat-round-trips", type=float, default=netmodel.TODAY.chat_handshake)
    parser.add_argument("--calibrate", metavar="MS,MS",
                        help="instead: the topology of bench/run.py's WAN part (a seed, a waiting "
                             "stranger, a fresh joiner; every path this RTT, 1%% loss, nobody NATed "
                             "or leaving) at these RTTs, to hold against a namespace run")
    parser.add_argument("--before", action="store_true",
                        help="also run with the round trips from before issue 13 item 1 "
                             "(netmodel.BEFORE_ISSUE13)")
    args = parser.parse_args()
    sizes = args.nodes or ([1000] if args.quick else [1000, 10000])
    trials = args.trials or (60 if args.quick else 400)
    trips = RoundTrips(connect=args.connect_round_trips, stream=args.stream_round_trips,
                       chat_handshake=args.chat_round_trips)
    latency = replace(defaults.latency, median=args.median_rtt / 2)
    model = InternetModel(round_trips=trips, latency=latency, loss=args.loss,
                          unreachable=args.unreachable, dead=args.dead, mean_wait=args.mean_wait)
    variants = [("today", model)]
    if args.before:
        variants.append(("before issue 13", model.with_round_trips(netmodel.BEFORE_ISSUE13)))
    began = time.perf_counter()
    if args.calibrate:
        print(json.dumps(calibrate(args, trips, trials), indent=2))
        return
    result: dict = {"model": {k: v for k, v in asdict(model).items()},
                    "pair_rtt": model.latency.pair_quantiles(random.Random(args.seed)),
                    "give_up_s": args.give_up, "trials": trials, "runs": []}
    for size in sizes:
        overlay = Overlay(size, np.random.default_rng(args.seed + size))
        for label, variant in variants:
            for searcher in SEARCHERS:
                world = World(overlay, variant, args.seed)
                row = run_case(world, fresh=searcher != "warm", cached=searcher == "returning",
                               trials=trials, give_up=args.give_up)
                row.update(nodes=size, variant=label, searcher=searcher,
                           after_lookup_round_trips=variant.round_trips.after_lookup())
                result["runs"].append(row)
                print(f"N={size:,} {label:>14} {row['searcher']}: matched {row['matched']:.0%} "
                      f"(within 10 s {row['matched_within_10s']:.0%}), median "
                      f"{row['seconds'].get('median')} s, p90 {row['seconds'].get('p90')} s "
                      f"[direct {row['seconds_direct'].get('median')} s, relayed "
                      f"{row['seconds_relayed'].get('median')} s]", file=sys.stderr, flush=True)
    result["runtime_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
