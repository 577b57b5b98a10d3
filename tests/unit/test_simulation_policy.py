"""The internet-scale simulation runs the node's search policy, not a copy of it.

``bench/simulate.py`` needs numpy, which the project does not; its policy part,
``bench/search_sim.py``, does not, so these tests import that and read
``simulate.py`` as text.
"""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import pytest

from strangers.discovery import search
from strangers.discovery.matcher import Matcher, Refusal
from strangers.discovery.topics import EPOCH_SECONDS, HOME_SHARD, TopicKey, epoch_at

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import search_sim  # noqa: E402  (bench/ is not a package)

WALL = 1_800_000_000.0  # an epoch's first second: both epochs are walked
INTEREST = "rare interest"


def _planner(seed: int = 1) -> search.SearchPlanner:
    return search.SearchPlanner(Matcher(local_id=b"me", interests=(INTEREST,)), random.Random(seed))


def _first_walk(planner: search.SearchPlanner, now: float = 0.0, wall: float = WALL) -> search.Walk:
    for _ in range(5):
        action = planner.next(now, wall, 0)
        if isinstance(action, search.Walk):
            return action
    raise AssertionError("no walk")


def _fixed(seconds: float = 1.0):
    return lambda _key, holds: (seconds, 3.0, holds)


def test_the_simulated_walks_are_the_planners_fast_and_thorough_walks() -> None:
    planner = _planner()
    planner.start(0.0)
    fast = _first_walk(planner)
    assert (fast.enough_sources, fast.num_results) == (
        search_sim.FAST_ENOUGH_SOURCES, search_sim.FAST_NUM_RESULTS)
    # a search that found only a busy stranger makes the next one thorough
    planner.on_walk_result(fast.keys[0], [b"busy"], (), 0.0, WALL)
    planner.on_round_done()
    proposal = planner.next(0.0, WALL, 0)
    assert isinstance(proposal, search.Propose)
    planner.on_proposal_result(proposal.peer, 0.0, accepted=False, refusal=Refusal.BUSY)
    while not isinstance(planner.next(0.0, WALL, 0), search.Wait):  # the pause starts
        pass
    thorough = _first_walk(planner, now=10.0, wall=WALL + 10.0)
    assert thorough.thorough
    assert (thorough.enough_sources, thorough.num_results) == (
        search_sim.THOROUGH_ENOUGH_SOURCES, search_sim.THOROUGH_NUM_RESULTS)


def test_the_simulated_renewals_fall_where_the_planners_do() -> None:
    offsets = []
    for seed in range(200):
        planner = _planner(seed)
        planner.start(0.0)
        clock = search.FIRST_SEARCH_HEAD_START
        while not isinstance(action := planner.next(clock, WALL + clock, 0), search.Announce):
            assert isinstance(action, (search.Searching, search.Walk, search.Wait)), action
        planner.on_announced([5], clock, WALL + clock)
        action = planner.next(clock, WALL + clock, 0)  # the walk is still in flight
        assert isinstance(action, search.Wait)
        renewal = action.until
        offsets.append(renewal - clock - (EPOCH_SECONDS - (WALL + clock) % EPOCH_SECONDS))
    low, high = search_sim.READVERTISE_JITTER
    assert all(low <= offset <= high for offset in offsets)
    assert max(offsets) - min(offsets) > 0.8 * (high - low)  # spread over the whole window


@pytest.mark.parametrize(("large", "hot", "listed", "rounds", "walks"), [
    (False, None, {HOME_SHARD}, 1, 2),  # small network: home, both epochs
    (True, False, {HOME_SHARD, 3}, 1, 2),  # known not hot: home only
    (True, None, {HOME_SHARD, 3}, 1, 4),  # not known: probe and home together
    (True, True, {HOME_SHARD}, 2, 4),  # hot: the probe first, then home
])
def test_a_simulated_search_walks_the_rounds_the_planner_chooses(large, hot, listed, rounds,
                                                                  walks) -> None:
    outcome = search_sim.simulate_search(random.Random(2), interest=INTEREST, wall=WALL,
                                         listed=listed, walk_time=_fixed(), rtt=0.1,
                                         large=large, hot=hot)
    assert outcome.matched
    assert (outcome.rounds, outcome.walks) == (rounds, walks)
    assert outcome.revealed == (INTEREST,)  # the proposal reveals what it was found under
    assert outcome.rpcs == 3.0 * walks


def test_a_hot_topic_found_on_the_probe_is_matched_in_one_round() -> None:
    rng = random.Random(3)
    outcomes = [search_sim.simulate_search(rng, interest=INTEREST, wall=WALL,
                                           listed={HOME_SHARD, shard}, walk_time=_fixed(),
                                           rtt=0.0, large=True, hot=True)
                for shard in range(1, 8) for _ in range(20)]
    assert {o.rounds for o in outcomes} == {1, 2}  # the probe sometimes hits the stranger's shard


def test_the_round_ends_at_the_first_candidate_unless_told_otherwise() -> None:
    def walk_time(key: TopicKey, holds: bool):
        return (0.5 if holds else 3.0), 1.0, holds

    kwargs = dict(interest=INTEREST, wall=WALL, listed={HOME_SHARD}, walk_time=walk_time,
                  rtt=0.1, large=False)
    cut = search_sim.simulate_search(random.Random(4), **kwargs)
    waited = search_sim.simulate_search(random.Random(4), cut=False, **kwargs)
    assert cut.seconds == pytest.approx(0.5 + search.CANDIDATE_GRACE + 0.1)
    assert waited.seconds == pytest.approx(3.0 + 0.1)


def test_nobody_listed_means_the_planners_pauses_between_searches() -> None:
    outcome = search_sim.simulate_search(random.Random(5), interest=INTEREST, wall=WALL,
                                         listed=set(), walk_time=_fixed(1.0), rtt=0.1,
                                         large=False, attempts=3)
    assert not outcome.matched and outcome.rounds == 3
    assert outcome.seconds == pytest.approx(3 * 1.0 + search.POLL_DELAYS[0] + search.POLL_DELAYS[1])


def test_stranger_shards_list_home_and_drawn_shards() -> None:
    rng = random.Random(6)
    assert search_sim.stranger_shards(rng, 0, large=True) == set()
    assert search_sim.stranger_shards(rng, 5, large=False) == {HOME_SHARD}
    assert HOME_SHARD in search_sim.stranger_shards(rng, 3, large=True)
    assert epoch_at(WALL) * EPOCH_SECONDS == WALL  # the scenarios start an epoch


POLICY_NAMES = {
    "POLL_DELAYS", "READVERTISE_RETRY", "LARGE_NETWORK_TABLE", "THOROUGH_SOURCES",
    "HOT_PROVIDERS", "CANDIDATE_GRACE", "FIRST_SEARCH_HEAD_START", "SKIP_UNREACHABLE",
    "SKIP_AFTER_REFUSAL", "READVERTISE_JITTER", "READVERTISE_DELAY", "FAST_WALK", "THOROUGH_WALK",
}


@pytest.mark.parametrize("script", ["simulate.py", "search_sim.py", "internet_sim.py",
                                    "netmodel.py"])
def test_the_simulation_defines_no_policy_constant_of_its_own(script: str) -> None:
    tree = ast.parse((BENCH / script).read_text())
    assigned = {target.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)}
    own = assigned & POLICY_NAMES
    if script == "search_sim.py":  # it re-exports the planner's, by reading them
        source = (BENCH / script).read_text()
        assert "READVERTISE_JITTER = search.READVERTISE_DELAY" in source
        own -= {"READVERTISE_JITTER"}
    assert not own


def test_simulate_py_runs_the_planner_for_the_nodes_cases() -> None:
    source = (BENCH / "simulate.py").read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "search_sim" for alias in node.names}
    assert {"simulate_search", "FAST_ENOUGH_SOURCES", "FAST_NUM_RESULTS",
            "READVERTISE_JITTER"} <= imported
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "simulate_search"]
    assert len(calls) >= 2  # time to match, and rounds per search


def test_an_unanswered_proposal_is_skipped_then_retried_as_the_planner_says() -> None:
    answers = iter([(1.0, False), (0.2, True)])  # the first dial misses its deadline
    starts = []

    def propose_at(now: float):
        starts.append(now)
        return next(answers)

    outcome = search_sim.simulate_search(
        random.Random(7), interest=INTEREST, wall=WALL, listed={HOME_SHARD},
        walk_at=lambda _walk, _key, holds, _now: (0.5, 1.0, holds), propose_at=propose_at,
        table_size=lambda: 0, attempts=100)
    assert outcome.matched and len(starts) == 2
    # the stranger is skipped for SKIP_UNREACHABLE: the searches in between find only it
    assert starts[1] - starts[0] >= search.SKIP_UNREACHABLE


def test_a_search_gives_up_when_told() -> None:
    outcome = search_sim.simulate_search(
        random.Random(8), interest=INTEREST, wall=WALL, listed=set(),
        walk_at=lambda _walk, _key, holds, _now: (1.0, 1.0, holds), table_size=lambda: 0,
        attempts=10_000, give_up=20.0)
    assert not outcome.matched and 20.0 < outcome.seconds < 20.0 + 1.0 + max(search.POLL_DELAYS)


def test_the_calibrated_simulation_lets_the_planner_choose_walks_and_network_size() -> None:
    source = (BENCH / "internet_sim.py").read_text()
    tree = ast.parse(source)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "simulate_search"]
    assert calls
    for call in calls:
        keywords = {keyword.arg for keyword in call.keywords}
        assert {"walk_at", "propose_at", "table_size"} <= keywords
        assert "large" not in keywords and "hot" not in keywords  # the planner learns them
    # each walk stops as the planner's Walk says (fast or thorough), as kad.py stops
    assert "action.enough_sources" in source and "action.num_results" in source
    assert "ENOUGH_PROVIDERS" in source
    # the stranger is listed as a default user is: under the anyone key too
    assert "advertises_anyone" in source
