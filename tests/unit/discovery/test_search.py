"""The search planner, driven through its public API with a fake clock and seeded randomness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangers.discovery.lookup import K_VALUE, SEARCH_CLOSEST
from strangers.discovery.matcher import Matcher, MatchState, Refusal
from strangers.discovery.search import (
    FIRST_SEARCH_HEAD_START,
    HOT_PROVIDERS,
    LARGE_NETWORK_TABLE,
    POLL_DELAYS,
    READVERTISE_RETRY,
    SKIP_AFTER_REFUSAL,
    SKIP_UNREACHABLE,
    THOROUGH_SOURCES,
    Announce,
    Done,
    Propose,
    Searching,
    SearchPlanner,
    Wait,
    Walk,
)
from strangers.discovery.topics import (
    ADULT_LANE,
    EPOCH_SECONDS,
    GENERAL_LANE,
    HOME_SHARD,
    PREVIOUS_EPOCH_WINDOW,
    READVERTISE_SPREAD,
    TopicKey,
    first_search_keys,
)

ME = b"\x50" * 8
ALICE = b"\x90" * 8
BOB = b"\x91" * 8
CAROL = b"\x92" * 8
LOWER = b"\x10" * 8  # sorts before ME: its proposal wins a crossing
EPOCH = 6_000_000
WALL = EPOCH * EPOCH_SECONDS + PREVIOUS_EPOCH_WINDOW + 10.0  # past the previous-epoch window
SMALL, LARGE = 10, LARGE_NETWORK_TABLE


class Clock:
    """Monotonic and wall time, moved together by the test."""

    def __init__(self, wall: float = WALL) -> None:
        self.now = 100.0
        self.wall = wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def make(interests=("jazz",), *, seed: int = 1, **matcher_settings) -> SearchPlanner:
    matcher = Matcher(local_id=ME, interests=interests, **matcher_settings)
    return SearchPlanner(matcher, random.Random(seed))


def drain(planner: SearchPlanner, clock: Clock, table: int = SMALL) -> list:
    """Every action the planner gives now, up to and including the Wait (or Done)."""
    actions = []
    for _ in range(50):
        action = planner.next(clock.now, clock.wall, table)
        actions.append(action)
        if isinstance(action, (Wait, Done)):
            return actions
    raise AssertionError(f"the planner never waits: {actions[:5]}")


def only(actions, kind):
    found = [action for action in actions if isinstance(action, kind)]
    assert len(found) == 1, actions
    return found[0]


def report(planner: SearchPlanner, walk: Walk, clock: Clock, listed=None, closest=()) -> list[bool]:
    """Report every walk of the round (``listed``: key -> providers), then the round's end."""
    listed = listed or {}
    cuts = [planner.on_walk_result(key, listed.get(key, ()), closest, clock.now, clock.wall)
            for key in walk.keys]
    planner.on_round_done()
    return cuts


def home(interest, epoch=EPOCH):
    return TopicKey(interest, epoch, HOME_SHARD)


def started(interests=("jazz",), clock=None, table=SMALL, **kwargs):
    clock = clock or Clock()
    planner = make(interests, **kwargs)
    planner.start(clock.now)
    return planner, clock, drain(planner, clock, table)


def pause_after_empty_search(planner, clock, actions, table=SMALL):
    walk = only(actions, Walk)
    report(planner, walk, clock)
    return drain(planner, clock, table)


# -- the first actions ---------------------------------------------------------------


def test_a_search_tells_the_user_then_walks_home_on_a_small_network() -> None:
    planner, clock, actions = started()
    assert actions[0] == Searching(random=False)
    walk = only(actions, Walk)
    assert walk.keys == (home("jazz"),)
    assert (walk.thorough, walk.enough_sources, walk.num_results) == (False, 1, SEARCH_CLOSEST)
    assert (walk.attempt, walk.round) == (0, 0)
    # the first search of a process runs alone: no announcement yet
    assert not [a for a in actions if isinstance(a, Announce)]
    assert actions[-1] == Wait(clock.now + FIRST_SEARCH_HEAD_START)
    assert planner.searching


def test_a_node_without_interests_is_random_from_the_start() -> None:
    _planner, _clock, actions = started(())
    assert actions[0] == Searching(random=True)
    assert only(actions, Walk).keys == (TopicKey(None, EPOCH, HOME_SHARD),)


def test_early_in_an_epoch_the_previous_epoch_is_walked_too() -> None:
    _planner, _clock, actions = started(clock=Clock(EPOCH * EPOCH_SECONDS + 5.0))
    assert only(actions, Walk).keys == (home("jazz"), home("jazz", EPOCH - 1))


def test_on_a_large_network_a_new_topic_is_walked_on_the_probe_and_at_home() -> None:
    planner, _clock, actions = started(table=LARGE)
    assert 1 <= planner.shard < 8
    assert only(actions, Walk).keys == (TopicKey("jazz", EPOCH, planner.shard), home("jazz"))


# -- rounds, hot topics, cut-off -------------------------------------------------------------


def test_a_hot_topic_probes_its_shard_first_and_home_only_if_the_probe_found_nobody() -> None:
    planner, clock, actions = started(table=LARGE)
    crowd = [bytes([0xA0, i]) for i in range(HOT_PROVIDERS)]
    walk = only(actions, Walk)
    planner.on_walk_result(walk.keys[1], crowd, (), clock.now, clock.wall)
    assert planner.hot == {"jazz": True}
    planner.on_round_done()
    # propose to each in turn; they all refuse
    for _ in crowd:
        proposal = only(drain(planner, clock, LARGE)[:1], Propose)
        planner.on_proposal_result(proposal.peer, clock.now, accepted=False, refusal=Refusal.BUSY)
    actions = drain(planner, clock, LARGE)
    assert isinstance(actions[-1], Wait)
    clock.advance(POLL_DELAYS[0])
    walk = only(drain(planner, clock, LARGE), Walk)
    assert walk.keys == (TopicKey("jazz", EPOCH, planner.shard),)  # round 0: the probe only
    assert walk.thorough  # the last search found strangers, none usable
    report(planner, walk, clock)
    walk = only(drain(planner, clock, LARGE), Walk)
    assert (walk.keys, walk.round) == ((home("jazz"),), 1)  # round 1: home


def test_a_topic_that_is_not_hot_is_walked_at_home_only() -> None:
    planner, clock, actions = started(table=LARGE)
    walk = only(actions, Walk)
    report(planner, walk, clock, {home("jazz"): [ALICE]})
    assert planner.hot == {"jazz": False}
    proposal = only(drain(planner, clock, LARGE)[:1], Propose)
    planner.on_proposal_result(proposal.peer, clock.now, accepted=False)
    drain(planner, clock, LARGE)
    clock.advance(POLL_DELAYS[0])
    assert only(drain(planner, clock, LARGE), Walk).keys == (home("jazz"),)


def test_only_the_current_epochs_home_key_tells_whether_a_topic_is_hot() -> None:
    planner, clock, actions = started(clock=Clock(EPOCH * EPOCH_SECONDS + 5.0))
    planner.on_walk_result(home("jazz", EPOCH - 1), [ALICE], (), clock.now, clock.wall)
    assert planner.hot == {}


def test_a_stranger_under_an_interest_key_ends_the_round() -> None:
    planner, clock, actions = started(table=LARGE)
    walk = only(actions, Walk)
    assert planner.on_walk_result(walk.keys[0], [ALICE], (), clock.now, clock.wall)


def test_ourselves_a_skipped_stranger_or_the_anyone_key_do_not_end_the_round() -> None:
    planner, clock, _actions = started(random_after=0.0)
    anyone = TopicKey(None, EPOCH, HOME_SHARD)
    assert not planner.on_walk_result(home("jazz"), [ME], (), clock.now, clock.wall)
    assert not planner.on_walk_result(anyone, [ALICE], (), clock.now, clock.wall)
    planner.on_round_done()
    proposal = only(drain(planner, clock)[:1], Propose)
    assert proposal == Propose(ALICE, ())  # found under the anyone key only: reveal nothing
    planner.on_proposal_result(ALICE, clock.now, accepted=False, refusal=Refusal.NOT_LOOKING)
    drain(planner, clock)
    clock.advance(POLL_DELAYS[0])
    walk = only(drain(planner, clock), Walk)
    assert not planner.on_walk_result(walk.keys[0], [ALICE], (), clock.now, clock.wall)


def test_a_proposal_reveals_the_interests_the_candidate_was_found_under() -> None:
    planner, clock, actions = started(("jazz", "chess", "go"), table=LARGE)
    walk = only(actions, Walk)
    listed = {key: [ALICE] for key in walk.keys if key.interest in ("jazz", "go")}
    report(planner, walk, clock, listed)
    assert only(drain(planner, clock, LARGE)[:1], Propose) == Propose(ALICE, ("jazz", "go"))


def test_a_stranger_listed_in_both_epochs_is_one_candidate() -> None:
    planner, clock, actions = started(clock=Clock(EPOCH * EPOCH_SECONDS + 5.0))
    walk = only(actions, Walk)
    report(planner, walk, clock, {key: [ALICE] for key in walk.keys})
    assert only(drain(planner, clock)[:1], Propose) == Propose(ALICE, ("jazz",))


def test_with_a_walk_and_an_announcement_in_flight_the_planner_waits_for_either() -> None:
    planner, clock, _actions = started()
    clock.advance(FIRST_SEARCH_HEAD_START)
    actions = drain(planner, clock)
    assert only(actions, Announce) and actions[-1] == Wait(None)


def test_a_late_walk_result_is_ignored() -> None:
    planner, clock, actions = started()
    walk = only(actions, Walk)
    report(planner, walk, clock, {home("jazz"): [ALICE]})
    assert not planner.on_walk_result(walk.keys[0], [BOB], (), clock.now, clock.wall)
    planner.on_round_done()  # again: nothing changes
    assert only(drain(planner, clock)[:1], Propose).peer == ALICE


# -- proposals ----------------------------------------------------------------------------


def test_an_accepted_proposal_matches_and_ends_the_search() -> None:
    planner, clock, actions = started()
    report(planner, only(actions, Walk), clock, {home("jazz"): [ALICE]})
    proposal = only(drain(planner, clock)[:1], Propose)
    assert planner.matcher.state is MatchState.PROPOSING
    assert planner.on_proposal_result(ALICE, clock.now, accepted=True)
    assert planner.matcher.state is MatchState.MATCHED and planner.matcher.peer == proposal.peer
    assert drain(planner, clock) == [Done()]
    assert not planner.searching


@pytest.mark.parametrize(("refusal", "skip"), [
    *SKIP_AFTER_REFUSAL.items(), (None, SKIP_UNREACHABLE)])
def test_a_refused_or_unanswered_candidate_is_skipped_for_a_while(refusal, skip) -> None:
    planner, clock, actions = started()
    report(planner, only(actions, Walk), clock, {home("jazz"): [ALICE, BOB]})
    first = only(drain(planner, clock)[:1], Propose).peer
    assert not planner.on_proposal_result(first, clock.now, accepted=False, refusal=refusal)
    second = only(drain(planner, clock)[:1], Propose).peer
    assert {first, second} == {ALICE, BOB}
    assert planner.matcher.is_skipped(first, clock.now + skip - 0.01)
    assert not planner.matcher.is_skipped(first, clock.now + skip)


def test_an_answer_from_someone_else_is_ignored() -> None:
    planner, clock, actions = started()
    report(planner, only(actions, Walk), clock, {home("jazz"): [ALICE]})
    only(drain(planner, clock)[:1], Propose)
    assert not planner.on_proposal_result(BOB, clock.now, accepted=True)
    assert planner.matcher.state is MatchState.PROPOSING


def test_a_crossed_proposal_that_we_accepted_stands_over_the_late_answer() -> None:
    planner, clock, actions = started()
    report(planner, only(actions, Walk), clock, {home("jazz"): [LOWER]})
    only(drain(planner, clock)[:1], Propose)
    # LOWER proposes to us at the same moment, and its proposal wins
    assert planner.matcher.on_proposal(LOWER, ("jazz",), clock.now).accept
    assert not planner.on_proposal_result(LOWER, clock.now, accepted=True)
    assert drain(planner, clock) == [Done()]


def test_an_incoming_match_ends_the_search() -> None:
    planner, clock, _actions = started()
    assert planner.matcher.on_proposal(ALICE, ("jazz",), clock.now).accept
    assert drain(planner, clock) == [Done()]
    assert drain(planner, clock) == [Done()]  # and stays over
    assert not planner.on_announced([3], clock.now, clock.wall)  # late: ignored


# -- pauses and the random phase ------------------------------------------------------------


def test_pauses_grow_while_nobody_fits() -> None:
    planner, clock, actions = started(interests_only=True)
    for delay in (*POLL_DELAYS, POLL_DELAYS[-1]):
        walk = only(actions, Walk)
        assert not walk.thorough  # nobody found: every search is fast
        report(planner, walk, clock)
        waits = [a for a in drain(planner, clock) if isinstance(a, Wait)]
        assert waits[-1].until == pytest.approx(min(clock.now + delay, waits[-1].until))
        clock.advance(delay)
        actions = drain(planner, clock)
    assert only(actions, Walk).attempt == len(POLL_DELAYS) + 1


def test_the_pause_is_cut_short_to_reach_the_random_phase_on_time() -> None:
    planner, clock, actions = started(random_after=0.1)
    pause = pause_after_empty_search(planner, clock, actions)
    assert pause[-1] == Wait(clock.now + 0.1 + 0.01)
    clock.advance(0.11)
    actions = drain(planner, clock)
    assert actions[0] == Searching(random=True)
    assert only(actions, Walk).keys == (home("jazz"), TopicKey(None, EPOCH, HOME_SHARD))


def test_a_wait_before_the_pause_ends_starts_nothing() -> None:
    planner, clock, actions = started(interests_only=True)
    pause_after_empty_search(planner, clock, actions)
    clock.advance(POLL_DELAYS[0] / 2)
    assert isinstance(drain(planner, clock)[-1], Wait)


def test_a_peer_added_to_an_empty_table_ends_the_pause_at_once() -> None:
    # A LAN with no bootstrap: the first search walks an empty table; mDNS
    # lists a neighbour 70 ms later, and the search looks again right then.
    planner, clock, actions = started(interests_only=True, table=0)
    pause = pause_after_empty_search(planner, clock, actions, table=0)
    assert pause[-1] == Wait(clock.now + POLL_DELAYS[0])
    clock.advance(0.07)
    assert planner.on_peers_added() is True
    walk = only(drain(planner, clock, table=1), Walk)
    assert walk.attempt == 1 and walk.keys == (home("jazz"),)
    report(planner, walk, clock, {home("jazz"): [ALICE]})
    assert only(drain(planner, clock, table=1), Propose).peer == ALICE


def test_peers_added_during_a_starved_walk_end_its_pause() -> None:
    planner, clock, actions = started(interests_only=True, table=0)
    assert planner.on_peers_added() is False  # walking: nothing to wake yet
    walk = only(actions, Walk)
    report(planner, walk, clock)
    assert only(drain(planner, clock, table=1), Walk).attempt == 1


def test_peers_added_do_not_cut_the_pause_of_a_search_that_had_peers_to_ask() -> None:
    planner, clock, actions = started(interests_only=True, table=SEARCH_CLOSEST)
    pause_after_empty_search(planner, clock, actions, table=SEARCH_CLOSEST)
    assert planner.on_peers_added() is False
    assert isinstance(drain(planner, clock, table=SEARCH_CLOSEST + 1)[-1], Wait)


def test_each_wake_walks_once_and_the_pauses_still_grow() -> None:
    planner, clock, actions = started(interests_only=True, table=0)
    pause_after_empty_search(planner, clock, actions, table=0)
    planner.on_peers_added()
    actions = drain(planner, clock, table=1)
    pause = pause_after_empty_search(planner, clock, actions, table=1)
    assert pause[-1] == Wait(clock.now + POLL_DELAYS[1])  # the wake counted as a search
    assert isinstance(drain(planner, clock, table=1)[-1], Wait)  # no second walk unasked


# -- advertising -----------------------------------------------------------------------------


def test_the_first_search_announces_after_its_head_start() -> None:
    planner, clock, _actions = started()
    clock.advance(FIRST_SEARCH_HEAD_START)
    announce = only(drain(planner, clock), Announce)
    assert announce.keys == (home("jazz"), TopicKey(None, EPOCH, HOME_SHARD))
    assert announce.closest == {}


def test_the_first_search_announces_once_a_round_ended_without_a_match() -> None:
    planner, clock, actions = started(interests_only=True)
    assert not planner.head_start_over
    actions = pause_after_empty_search(planner, clock, actions)
    assert planner.head_start_over
    assert only(actions, Announce).keys == (home("jazz"),)  # interests only: no anyone key


def test_a_large_network_announces_at_home_and_on_the_searchs_shard() -> None:
    planner, clock, _actions = started(interests_only=True, table=LARGE)
    clock.advance(FIRST_SEARCH_HEAD_START)
    announce = only(drain(planner, clock, LARGE), Announce)
    assert announce.keys == (home("jazz"), TopicKey("jazz", EPOCH, planner.shard))


def test_announcing_tells_the_user_once_and_wakes_a_paused_search() -> None:
    planner, clock, actions = started(interests_only=True)
    for _ in range(3):  # the pauses grow
        actions = pause_after_empty_search(planner, clock, actions)
        if any(isinstance(a, Announce) for a in actions):
            break
    assert only(actions, Announce)
    clock.advance(0.01)
    assert planner.on_announced([4, 3], clock.now, clock.wall) == 3
    assert planner.advertised == {home("jazz").multihash}
    walk = only(drain(planner, clock), Walk)  # at once, not after the pause
    report(planner, walk, clock)
    assert drain(planner, clock)[-1] == Wait(clock.now + POLL_DELAYS[0])  # the pauses start again
    clock.advance(POLL_DELAYS[0])
    assert only(drain(planner, clock), Walk).attempt == 1


def test_a_key_nobody_took_is_announced_again_after_a_pause() -> None:
    planner, clock, _actions = started(interests_only=True)
    clock.advance(FIRST_SEARCH_HEAD_START)
    first = only(drain(planner, clock), Announce)
    assert planner.on_announced([2, 0], clock.now, clock.wall) is None
    assert planner.on_announced([], clock.now, clock.wall) is None  # nothing in flight
    assert drain(planner, clock)[-1] == Wait(clock.now + READVERTISE_RETRY)
    clock.advance(READVERTISE_RETRY)
    assert only(drain(planner, clock), Announce) == first
    assert planner.on_announced([], clock.now, clock.wall) is None  # all failed
    assert planner.advertised == frozenset()


def test_records_are_renewed_in_the_next_epochs_first_two_minutes() -> None:
    planner, clock, _actions = started(("jazz",), interests_only=True)
    clock.advance(FIRST_SEARCH_HEAD_START)
    only(drain(planner, clock), Announce)
    assert planner.on_announced([5], clock.now, clock.wall) == 5
    to_next_epoch = (EPOCH + 1) * EPOCH_SECONDS - clock.wall
    waits = [a.until - clock.now for a in drain(planner, clock) if isinstance(a, Wait)]
    assert to_next_epoch + 1.0 <= waits[-1] or waits[-1] < to_next_epoch  # poll pause may come first
    # let the pauses run (nobody found) until the announcement is due
    renewed = None
    for _ in range(200):
        actions = drain(planner, clock)
        for action in actions:
            if isinstance(action, Walk):
                report(planner, action, clock)
            if isinstance(action, Announce):
                renewed = action
        if renewed:
            break
        clock.advance(POLL_DELAYS[-1])
    assert renewed is not None
    assert renewed.keys == (home("jazz", EPOCH + 1),)
    into_epoch = clock.wall - (EPOCH + 1) * EPOCH_SECONDS
    assert 1.0 <= into_epoch <= READVERTISE_SPREAD + POLL_DELAYS[-1]
    assert planner.on_announced([5], clock.now, clock.wall) is None  # told once per process


def test_a_later_search_in_the_same_epoch_announces_nothing_new_and_at_once() -> None:
    planner, clock, actions = started(interests_only=True)
    clock.advance(FIRST_SEARCH_HEAD_START)
    only(drain(planner, clock), Announce)
    planner.on_announced([5], clock.now, clock.wall)
    assert planner.matcher.on_proposal(ALICE, ("jazz",), clock.now).accept
    assert drain(planner, clock) == [Done()]
    planner.matcher.end_chat(clock.now)
    planner.start(clock.now)
    actions = drain(planner, clock)
    assert not [a for a in actions if isinstance(a, Announce)]  # the records are still fresh
    waits = [a for a in actions if isinstance(a, Wait)]
    to_next_epoch = (EPOCH + 1) * EPOCH_SECONDS - clock.wall
    assert waits[-1].until >= clock.now + to_next_epoch + 1.0  # renewed in the next epoch


def test_a_search_that_ended_before_its_head_start_lets_the_next_announce_at_once() -> None:
    planner, clock, _actions = started()
    assert planner.matcher.on_proposal(ALICE, ("jazz",), clock.now).accept
    planner.stop()
    assert planner.head_start_over
    planner.matcher.end_chat(clock.now)
    clock.advance(0.1)
    planner.start(clock.now)
    assert only(drain(planner, clock), Announce)


def test_a_thorough_walk_that_found_nobody_lends_its_closest_peers_to_the_announcement() -> None:
    planner, clock, actions = started(interests_only=True)
    report(planner, only(actions, Walk), clock, {home("jazz"): [ALICE]})
    proposal = only(drain(planner, clock)[:1], Propose)
    planner.on_proposal_result(proposal.peer, clock.now, accepted=False, refusal=Refusal.BUSY)
    actions = drain(planner, clock)  # nobody else: pause, and the head start is over
    announce = only(actions, Announce)
    assert announce.closest == {}  # the fast walk's peers are too few to announce to
    planner.on_announced([0], clock.now, clock.wall)  # nobody took it: retry later
    clock.advance(POLL_DELAYS[0])
    walk = only(drain(planner, clock), Walk)
    assert (walk.thorough, walk.enough_sources, walk.num_results) == (True, THOROUGH_SOURCES, K_VALUE)
    report(planner, walk, clock, closest=(BOB, CAROL))
    clock.advance(READVERTISE_RETRY)
    announce = only(drain(planner, clock), Announce)
    assert announce.closest == {home("jazz").multihash: (BOB, CAROL)}


def test_a_search_that_found_nobody_makes_the_next_one_fast_again() -> None:
    planner, clock, actions = started(interests_only=True)
    report(planner, only(actions, Walk), clock, {home("jazz"): [ALICE]})
    proposal = only(drain(planner, clock)[:1], Propose)
    planner.on_proposal_result(proposal.peer, clock.now, accepted=False, refusal=Refusal.BUSY)
    drain(planner, clock)
    clock.advance(POLL_DELAYS[0])
    walk = only(drain(planner, clock), Walk)
    assert walk.thorough
    report(planner, walk, clock)
    drain(planner, clock)
    clock.advance(POLL_DELAYS[1])
    assert not only(drain(planner, clock), Walk).thorough


# -- the planner against a random world ------------------------------------------------------

PEERS = [ME, LOWER, ALICE, BOB, CAROL]
INTERESTS = ("jazz", "chess")


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), table=st.sampled_from([SMALL, LARGE]),
       random_after=st.sampled_from([0.0, 1.0, 30.0]), steps=st.integers(1, 60),
       start=st.floats(0, EPOCH_SECONDS))
def test_in_any_world_the_planner_keeps_its_promises(seed, table, random_after, steps, start) -> None:
    """Walk results, answers and announcements drawn at random: the planner never
    proposes to us or to a skipped peer, reveals only the interests a candidate
    was found under, waits only for the future, and ends exactly when the
    matcher leaves the search."""
    world = random.Random(seed)
    clock = Clock(EPOCH * EPOCH_SECONDS + start)
    planner = make(INTERESTS, seed=seed, random_after=random_after)
    planner.start(clock.now)
    found_under: dict[bytes, set[str]] = {}
    in_flight: list = []
    for _ in range(steps):
        action = planner.next(clock.now, clock.wall, table)
        if isinstance(action, Done):
            assert planner.matcher.state not in (MatchState.SEARCHING, MatchState.PROPOSING)
            return
        assert planner.matcher.state in (MatchState.SEARCHING, MatchState.PROPOSING)
        if isinstance(action, Walk):
            found_under = {}
            for key in action.keys:
                listed = world.sample(PEERS, world.randrange(3))
                for peer in listed:
                    if key.interest is not None:
                        found_under.setdefault(peer, set()).add(key.interest)
                    found_under.setdefault(peer, set())
                if planner.on_walk_result(key, listed, (), clock.now, clock.wall):
                    assert key.interest is not None
                    break  # the round ends at once
            in_flight.append("round")
        elif isinstance(action, Propose):
            assert action.peer != ME
            assert not planner.matcher.is_skipped(action.peer, clock.now)
            assert set(action.interests) == found_under[action.peer]
            in_flight.append(action)
        elif isinstance(action, Announce):
            assert action.keys and not {k.multihash for k in action.keys} & planner.advertised
            in_flight.append("announce")
        elif isinstance(action, Wait):
            assert action.until is None or action.until > clock.now
            if in_flight and (action.until is None or world.random() < 0.7):
                outcome = in_flight.pop(world.randrange(len(in_flight)))
                if outcome == "round":
                    planner.on_round_done()
                elif outcome == "announce":
                    planner.on_announced([world.randrange(3) for _ in range(2)], clock.now, clock.wall)
                else:
                    answer = world.choice([True, False, *Refusal])
                    planner.on_proposal_result(
                        outcome.peer, clock.now, accepted=answer is True,
                        refusal=answer if isinstance(answer, Refusal) else None)
            else:
                assert action.until is not None, "nothing in flight, nothing to wait for"
                clock.advance(action.until - clock.now)
            if world.random() < 0.02:  # a stranger's proposal reaches us
                planner.matcher.on_proposal(world.choice(PEERS[1:]), INTERESTS, clock.now)


# -- the load budget ----------------------------------------------------------------


def test_a_search_waits_until_the_budget_can_pay_what_the_last_one_cost() -> None:
    from strangers.discovery.budget import SEARCH_BURST, SEARCH_FIRST, SEARCH_RATE

    planner, clock, actions = started()
    walk = only(actions, Walk)
    planner.on_requests(30, clock.now)  # the walk's requests
    report(planner, walk, clock)
    drain(planner, clock)
    assert planner.search_cost == 30
    # announcements (and anything else) put the budget into debt
    planner.on_requests(SEARCH_FIRST + 20, clock.now)
    assert planner.budget is not None and planner.budget.tokens(clock.now) == pytest.approx(-50)
    clock.advance(POLL_DELAYS[0])
    ready = planner.budget_ready_at(clock.now)
    # it waits for the last search's cost, or a full bucket if that is less
    wanted = min(30, SEARCH_BURST)
    assert ready == pytest.approx(clock.now + (wanted + 50 - POLL_DELAYS[0] * SEARCH_RATE) / SEARCH_RATE)
    assert drain(planner, clock)[-1] == Wait(ready)
    # the walks wait; nothing is walked before the budget holds the last search's cost
    while clock.now + 4.0 < ready:
        clock.advance(4.0)
        assert not [a for a in drain(planner, clock) if isinstance(a, Walk)]
    clock.advance(ready - clock.now)
    assert [a for a in drain(planner, clock) if isinstance(a, Walk)]


def test_over_a_long_search_the_walks_cost_about_the_budget_rate() -> None:
    """A node whose every search costs 12 requests, nobody ever listed: after the
    first burst, it spends about SEARCH_RATE requests a second."""
    from strangers.discovery.budget import SEARCH_FIRST, SEARCH_RATE

    planner, clock, actions = started(interests_only=True)
    start = clock.now
    spent = 0
    for _ in range(2000):
        for action in actions:
            if isinstance(action, Walk):
                planner.on_requests(12, clock.now)
                spent += 12
                report(planner, action, clock)
            elif isinstance(action, Announce):
                planner.on_announced([3] * len(action.keys), clock.now, clock.wall)
        if clock.now - start > 600:
            break
        clock.advance(0.25)
        actions = drain(planner, clock)
    elapsed = clock.now - start
    assert spent <= SEARCH_FIRST + SEARCH_RATE * elapsed + 12
    assert spent >= 0.8 * SEARCH_RATE * elapsed  # not starved either


@pytest.mark.parametrize(("interests", "lane", "lang"), [
    (("jazz",), GENERAL_LANE, ""), (("jazz", "go"), GENERAL_LANE, "fr"), ((), GENERAL_LANE, ""),
    (("jazz",), ADULT_LANE, "de"),
])
@pytest.mark.parametrize("wall", [WALL, EPOCH * EPOCH_SECONDS + 5.0])  # and in the previous-epoch window
def test_the_keys_a_launch_connects_for_are_the_first_walks(interests, lane, lang, wall):
    """topics.first_search_keys (the servers a launch connects to before its search)
    names the keys the planner's first walk walks, on a small network and a large one."""
    for table in (SMALL, LARGE):
        clock = Clock(wall)
        planner = SearchPlanner(Matcher(local_id=ME, interests=interests), random.Random(1),
                                lane=lane)
        planner.lang = lang
        planner.start(clock.now)
        walk = only(drain(planner, clock, table), Walk)
        expected = first_search_keys(interests, now=wall, lane=lane, lang=lang)
        home_keys = [key.multihash for key in walk.keys if key.shard == HOME_SHARD]
        assert home_keys == expected
