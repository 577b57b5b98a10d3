"""One search as a node runs it, over simulated walk times: the real planner decides.

``bench/simulate.py`` uses this instead of a copy of the node's policy: every
round, every key walked, the cut-off at the first candidate, whom to propose
to and what to reveal come from :class:`strangers.discovery.search.SearchPlanner`,
the object ``strangers.node.searching`` drives on the network. The world (who
is listed where, how long each walk takes, what it costs) is the caller's.

Needs nothing beyond the project (no numpy), so the unit tests import it
(``tests/unit/test_simulation_policy.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from strangers.discovery import search
from strangers.discovery.matcher import Matcher
from strangers.discovery.topics import HOME_SHARD, TopicKey, draw_shard, epoch_at

SEARCHER = b"searcher"
STRANGER = b"stranger"

FAST_ENOUGH_SOURCES, FAST_NUM_RESULTS = search.FAST_WALK
"""What a node's fast search walks pass to ``StrangersDHT.lookup`` (the planner's)."""
THOROUGH_ENOUGH_SOURCES, THOROUGH_NUM_RESULTS = search.THOROUGH_WALK
READVERTISE_JITTER = search.READVERTISE_DELAY
"""Seconds into a new epoch at which a node renews its records (uniform; the planner's)."""

WalkTime = Callable[[TopicKey, bool], tuple[float, float, bool]]
"""(key, whether the key lists a stranger) -> (seconds the walk takes, RPCs it
costs, whether it returned the stranger)."""
WalkAt = Callable[[search.Walk, TopicKey, bool, float], tuple[float, float, bool]]
"""As :data:`WalkTime`, told the planner's walk (fast or thorough: its stop rules) and when
it starts (seconds since the search began)."""
ProposeAt = Callable[[float], tuple[float, bool]]
"""(when the proposal starts) -> (seconds until its answer or its deadline, whether the
stranger answered)."""


@dataclass(frozen=True)
class SearchOutcome:
    """How one search went."""

    matched: bool
    seconds: float
    """From the start of the search to the accepted proposal's answer (or the
    end of the search's last round, when nobody was found)."""
    rounds: int
    walks: int
    rpcs: float
    revealed: tuple[str, ...] = ()
    """The interests the accepted proposal revealed."""


def simulate_search(rng: random.Random, *, interest: str, wall: float, listed: set[int],
                    walk_time: WalkTime | None = None, rtt: float = 0.0, large: bool = False,
                    hot: bool | None = None, cut: bool = True, attempts: int = 1,
                    walk_at: WalkAt | None = None, propose_at: ProposeAt | None = None,
                    table_size: Callable[[], int] | None = None,
                    give_up: float = float("inf")) -> SearchOutcome:
    """One search for strangers who share ``interest`` and are listed (in the
    current epoch) on the shards ``listed``, for at most ``attempts`` searches
    (with the planner's pauses between them).

    ``large``: the searcher's routing table marks a large network; ``hot``:
    what it learned of the topic before (None: nothing). ``cut=False`` lets
    every walk of a round finish (a policy the node does not use, for
    comparison). A proposal costs ``rtt``; the stranger's answer is the real
    :class:`Matcher`'s.

    The calibrated model (``bench/internet_sim.py``) passes instead
    ``walk_at`` (walks that depend on when they start: open connections,
    the round-trip estimate), ``propose_at`` (a proposal that may go
    unanswered: a dead or unreachable stranger, a deadline missed; the
    planner then skips it for ``SKIP_UNREACHABLE``), ``table_size`` (the
    routing table as it grows) and ``give_up`` (seconds; the search ends
    unmatched after that).
    """
    if walk_time is None and walk_at is None:
        raise ValueError("simulate_search needs walk_time or walk_at")
    planner = search.SearchPlanner(Matcher(local_id=SEARCHER, interests=(interest,)), rng)
    if hot is not None:
        planner.hot[interest] = hot
    stranger = Matcher(local_id=STRANGER, interests=(interest,))
    stranger.start_search(-30.0)
    fixed_table = search.LARGE_NETWORK_TABLE if large else 0
    epoch = epoch_at(wall)
    steps = rounds = walks = searches = 0
    seconds = rpcs = 0.0
    planner.start(0.0)
    while True:
        if seconds > give_up:
            return SearchOutcome(False, seconds, rounds, walks, rpcs)
        table = table_size() if table_size is not None else fixed_table
        action = planner.next(seconds, wall + seconds, table)
        if isinstance(action, search.Walk):
            searches += action.round == 0
            rounds += 1
            ends = []
            round_costs: list[float] = []
            for key in action.keys:
                holds = key.epoch == epoch and key.shard in listed
                took, cost, found = (walk_at(action, key, holds, seconds) if walk_at is not None
                                     else walk_time(key, holds))  # type: ignore[misc]
                ends.append((took, key, found))
                walks += 1
                rpcs += cost
                round_costs.append(cost)
            ends.sort(key=lambda end: end[0])
            round_end = ends[-1][0]
            for took, key, found in ends:
                providers = [STRANGER] if found else []
                if planner.on_walk_result(key, providers, (), seconds + took,
                                          wall + seconds + took) and cut:
                    round_end = took + search.CANDIDATE_GRACE
                    break
            seconds += round_end
            # the round's requests, charged to the planner's load budget as the node does
            planner.on_requests(sum(walk_time_cost for walk_time_cost in round_costs), seconds)
            planner.on_round_done()
        elif isinstance(action, search.Propose):
            answered = True
            if propose_at is not None:
                took, answered = propose_at(seconds)
                seconds += took
            else:
                seconds += rtt
            if not answered:  # unanswered in time: skipped for a while
                planner.on_proposal_result(action.peer, seconds, accepted=False)
                steps += 1
                continue
            decision = stranger.on_proposal(SEARCHER, action.interests, 0.0)
            if planner.on_proposal_result(action.peer, seconds, accepted=decision.accept,
                                          refusal=decision.refusal):
                return SearchOutcome(True, seconds, rounds, walks, rpcs, action.interests)
        elif isinstance(action, search.Wait) and action.until is not None and searches < attempts:
            seconds = max(seconds, action.until)  # the pause between two searches
        elif isinstance(action, (search.Wait, search.Done)):
            return SearchOutcome(False, seconds, rounds, walks, rpcs)
        # Searching and Announce: nothing to simulate (the search goes on)
        steps += 1
        if steps > 10_000:
            raise RuntimeError("the planner did not end the search")


def stranger_shards(rng: random.Random, advertisers: int, large: bool) -> set[int]:
    """Shards listing at least one of ``advertisers`` strangers, each at home and,
    on a large network, on one random other shard (as the planner announces)."""
    if not advertisers:
        return set()
    if not large:
        return {HOME_SHARD}
    return {HOME_SHARD} | {draw_shard(rng) for _ in range(advertisers)}
