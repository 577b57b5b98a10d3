"""The matcher, driven through its public API with a fake clock and seeded randomness."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strangers.discovery.matcher import (
    TRANSITIONS,
    Decision,
    Matcher,
    MatchState,
    Phase,
    Refusal,
)
from strangers.errors import LocalProtocolError

ME = b"\x50" * 8
LOWER = b"\x10" * 8  # a peer id that sorts before ours: wins a crossing
HIGHER = b"\x90" * 8  # one that sorts after ours: loses it
OTHER = b"\x70" * 8


class FakeClock:
    """Time only moves when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make(**overrides: object) -> Matcher:
    settings_: dict[str, object] = {"local_id": ME, "interests": ("jazz", "cinema")}
    settings_.update(overrides)
    return Matcher(**settings_)  # type: ignore[arg-type]


def bring_to(matcher: Matcher, state: MatchState, now: float, peer: bytes = HIGHER) -> Matcher:
    """Drive ``matcher`` from IDLE to ``state`` through the public API."""
    if state is MatchState.IDLE:
        return matcher
    matcher.start_search(now)
    if state is MatchState.PROPOSING:
        matcher.propose(peer)
    elif state is MatchState.MATCHED:
        matcher.propose(peer)
        matcher.proposal_accepted(peer)
    assert matcher.state is state
    return matcher


# --- the transition table ----------------------------------------------------------------


def fire(matcher: Matcher, event: str, now: float) -> None:
    """The public call that feeds ``event`` to the machine."""
    if event == "start_search":
        matcher.start_search(now)
    elif event == "propose":
        matcher.propose(OTHER)
    elif event == "accepted":
        matcher.proposal_accepted(matcher.peer or OTHER)
    elif event == "refused":
        matcher.proposal_failed(matcher.peer or OTHER, now)
    elif event == "incoming_accepted":
        decision = matcher.on_proposal(matcher.peer or LOWER, ("jazz",), now)
        assert decision == Decision(True, None, ("jazz",))
    elif event == "end_chat":
        matcher.end_chat(now)
    elif event == "stop":
        matcher.stop()
    else:  # pragma: no cover - a new event needs a line here
        raise AssertionError(f"unknown event {event!r}")


EVENTS = sorted({event for _state, event in TRANSITIONS})


def test_the_table_covers_every_state_and_lets_every_state_stop() -> None:
    assert {state for state, _event in TRANSITIONS} == set(MatchState)
    assert set(TRANSITIONS.values()) == set(MatchState)
    assert all((state, "stop") in TRANSITIONS for state in MatchState)
    assert EVENTS == sorted(
        ["start_search", "propose", "accepted", "refused", "incoming_accepted", "end_chat", "stop"]
    )


@pytest.mark.parametrize(
    ("state", "event"), sorted(TRANSITIONS, key=lambda item: (item[0].value, item[1])),
    ids=lambda value: getattr(value, "value", value),
)
def test_every_transition(state: MatchState, event: str) -> None:
    clock = FakeClock()
    # a PROPOSING matcher accepts an incoming proposal only from its own candidate, if lower
    matcher = bring_to(make(), state, clock.now, peer=LOWER)
    fire(matcher, event, clock.advance(1))
    assert matcher.state is TRANSITIONS[(state, event)]


INVALID = [
    (state, event)
    for state in MatchState
    for event in EVENTS
    if (state, event) not in TRANSITIONS
    # an incoming proposal is never an error: it is refused (tested below), and
    # a failed proposal while MATCHED is the crossing that our side won (ditto)
    and event != "incoming_accepted"
    and (state, event) != (MatchState.MATCHED, "refused")
]


@pytest.mark.parametrize(("state", "event"), INVALID, ids=lambda value: getattr(value, "value", value))
def test_invalid_transitions_raise_local_protocol_error(state: MatchState, event: str) -> None:
    clock = FakeClock()
    matcher = bring_to(make(), state, clock.now)
    peer_before = matcher.peer
    with pytest.raises(LocalProtocolError) as info:
        fire(matcher, event, clock.advance(1))
    assert matcher.state is state
    assert matcher.peer == peer_before
    message = str(info.value)
    assert repr(event) in message or "proposed to" in message


def test_invalid_transition_message_names_event_and_state() -> None:
    matcher = make()
    with pytest.raises(LocalProtocolError, match="matcher cannot 'propose' while 'idle'"):
        matcher.propose(OTHER)


def test_an_answer_from_another_peer_is_our_bug() -> None:
    matcher = bring_to(make(), MatchState.PROPOSING, 0.0, peer=HIGHER)
    with pytest.raises(LocalProtocolError, match="proposed to") as info:
        matcher.proposal_accepted(OTHER)
    assert repr(OTHER) in str(info.value) and repr(HIGHER) in str(info.value)
    with pytest.raises(LocalProtocolError, match="proposed to"):
        matcher.proposal_failed(OTHER, 1.0)
    assert matcher.state is MatchState.PROPOSING
    assert matcher.peer == HIGHER


def test_the_public_table_is_a_copy() -> None:
    TRANSITIONS_BACKUP = dict(TRANSITIONS)
    TRANSITIONS[(MatchState.IDLE, "propose")] = MatchState.PROPOSING
    try:
        with pytest.raises(LocalProtocolError):
            make().propose(OTHER)
    finally:
        TRANSITIONS.clear()
        TRANSITIONS.update(TRANSITIONS_BACKUP)


def test_peer_follows_the_transitions() -> None:
    clock = FakeClock()
    matcher = make()
    assert matcher.peer is None
    matcher.start_search(clock.now)
    assert matcher.peer is None
    matcher.propose(HIGHER)
    assert matcher.peer == HIGHER
    matcher.proposal_failed(HIGHER, clock.now)
    assert matcher.peer is None
    matcher.propose(OTHER)
    matcher.proposal_accepted(OTHER)
    assert matcher.peer == OTHER
    matcher.end_chat(clock.now)
    assert matcher.peer is None
    matcher.start_search(clock.now)
    matcher.propose(OTHER)
    matcher.stop()
    assert (matcher.state, matcher.peer) == (MatchState.IDLE, None)


def test_a_refused_proposal_while_matched_is_the_crossing_we_won() -> None:
    matcher = bring_to(make(), MatchState.PROPOSING, 0.0, peer=LOWER)
    assert matcher.on_proposal(LOWER, ("jazz",), 0.5).accept
    matcher.proposal_failed(LOWER, 1.0)  # their refusal of our proposal ("crossed")
    assert (matcher.state, matcher.peer) == (MatchState.MATCHED, LOWER)
    # and nobody was put on the skip list for it
    matcher.end_chat(2.0)
    matcher.start_search(2.0)
    assert matcher.is_skipped(LOWER, 2.0)  # skipped because the chat ended...
    assert not matcher.is_skipped(LOWER, 2.0 + matcher.skip_for)  # ...for skip_for only


# --- phases --------------------------------------------------------------------------------


def test_interests_first_then_random_after_random_after() -> None:
    clock = FakeClock()
    matcher = make(random_after=10.0)
    matcher.start_search(clock.now)
    start = clock.now
    assert matcher.phase(start) is Phase.INTERESTS
    assert matcher.seconds_to_random(start) == 10.0
    assert matcher.phase(start + 9.999) is Phase.INTERESTS
    assert matcher.seconds_to_random(start + 4.0) == pytest.approx(6.0)
    assert matcher.phase(start + 10.0) is Phase.RANDOM
    assert matcher.seconds_to_random(start + 10.0) is None
    assert matcher.phase(start + 1e6) is Phase.RANDOM


def test_the_random_phase_lasts_while_proposing() -> None:
    matcher = make(random_after=10.0)
    matcher.start_search(0.0)
    matcher.propose(OTHER)
    assert matcher.phase(5.0) is Phase.INTERESTS
    assert matcher.phase(10.0) is Phase.RANDOM


@pytest.mark.parametrize("state", [MatchState.IDLE, MatchState.MATCHED])
def test_not_searching_means_interests_phase(state: MatchState) -> None:
    matcher = bring_to(make(random_after=1.0), state, 0.0)
    assert matcher.phase(100.0) is Phase.INTERESTS


def test_a_new_search_restarts_the_interests_phase() -> None:
    clock = FakeClock()
    matcher = make(random_after=10.0)
    matcher.start_search(clock.now)
    matcher.propose(OTHER)
    matcher.proposal_accepted(OTHER)
    matcher.end_chat(clock.advance(60))
    matcher.start_search(clock.now)
    assert matcher.phase(clock.advance(5)) is Phase.INTERESTS
    assert matcher.seconds_to_random(clock.now) == pytest.approx(5.0)
    assert matcher.phase(clock.advance(5)) is Phase.RANDOM


def test_interests_only_never_goes_random() -> None:
    matcher = make(interests_only=True, random_after=0.0)
    matcher.start_search(0.0)
    assert matcher.phase(0.0) is Phase.INTERESTS
    assert matcher.phase(1e9) is Phase.INTERESTS
    assert matcher.seconds_to_random(0.0) is None
    assert matcher.advertises_anyone is False


def test_without_interests_random_at_once() -> None:
    matcher = make(interests=(), random_after=1e9)
    assert matcher.phase(0.0) is Phase.RANDOM
    matcher.start_search(0.0)
    assert matcher.phase(0.0) is Phase.RANDOM
    assert matcher.seconds_to_random(0.0) is None
    assert matcher.advertises_anyone is True


def test_random_after_zero_is_random_from_the_start() -> None:
    matcher = make(random_after=0.0)
    matcher.start_search(5.0)
    assert matcher.phase(5.0) is Phase.RANDOM


def test_seconds_to_random_never_negative_before_the_search() -> None:
    matcher = make(random_after=10.0)
    matcher.start_search(100.0)
    # a clock read before start_search (the adapter may hold an older "now")
    assert matcher.seconds_to_random(50.0) == 60.0


def test_negative_random_after_is_refused() -> None:
    with pytest.raises(ValueError, match=r"random_after must be >= 0, got -1\.0"):
        make(random_after=-1.0)


# --- choose_candidate ---------------------------------------------------------------------


def searching(now: float = 0.0, **overrides: object) -> Matcher:
    matcher = make(**overrides)
    matcher.start_search(now)
    return matcher


A, B, C, D = (bytes([n]) * 8 for n in (0x21, 0x22, 0x23, 0x24))


def test_strangers_sharing_an_interest_come_first() -> None:
    matcher = searching(random_after=0.0)  # random phase: everyone is allowed
    candidates = {A: (), B: ("jazz",), C: (), D: ("cinema", "jazz")}
    picks = {matcher.choose_candidate(candidates, 0.0, random.Random(seed)) for seed in range(40)}
    assert picks == {B, D}


def test_random_strangers_only_in_the_random_phase() -> None:
    matcher = searching(random_after=10.0)
    candidates = {A: (), B: ()}
    assert matcher.choose_candidate(candidates, 9.0, random.Random(1)) is None
    assert matcher.choose_candidate(candidates, 10.0, random.Random(1)) in {A, B}


def test_interests_only_never_picks_a_random_stranger() -> None:
    matcher = searching(interests_only=True, random_after=0.0)
    assert matcher.choose_candidate({A: (), B: ()}, 1e6, random.Random(1)) is None
    assert matcher.choose_candidate({A: (), B: ("jazz",)}, 1e6, random.Random(1)) == B


def test_no_candidates_no_choice() -> None:
    assert searching(random_after=0.0).choose_candidate({}, 0.0, random.Random(1)) is None


def test_we_never_choose_ourselves() -> None:
    matcher = searching(random_after=0.0)
    assert matcher.choose_candidate({ME: ("jazz",)}, 0.0, random.Random(1)) is None
    picks = {matcher.choose_candidate({ME: ("jazz",), A: ()}, 0.0, random.Random(s)) for s in range(20)}
    assert picks == {A}


@pytest.mark.parametrize("state", [MatchState.IDLE, MatchState.PROPOSING, MatchState.MATCHED])
def test_only_a_searching_node_chooses(state: MatchState) -> None:
    matcher = bring_to(make(random_after=0.0), state, 0.0)
    assert matcher.choose_candidate({A: ("jazz",)}, 1.0, random.Random(1)) is None


def test_a_refusing_peer_is_skipped_until_skip_for_elapsed() -> None:
    clock = FakeClock()
    matcher = searching(clock.now, skip_for=30.0)
    matcher.propose(A)
    matcher.proposal_failed(A, clock.advance(1))
    failed_at = clock.now
    assert matcher.is_skipped(A, failed_at)
    assert matcher.choose_candidate({A: ("jazz",)}, failed_at, random.Random(1)) is None
    # the others are still fine meanwhile
    assert matcher.choose_candidate({A: ("jazz",), B: ("jazz",)}, failed_at + 29.9, random.Random(1)) == B
    assert matcher.is_skipped(A, failed_at + 29.999)
    assert matcher.choose_candidate({A: ("jazz",)}, failed_at + 30.0, random.Random(1)) == A
    assert not matcher.is_skipped(A, failed_at + 30.0)
    # once expired it stays expired, even for an older clock reading
    assert not matcher.is_skipped(A, failed_at)


def test_the_stranger_we_left_is_skipped() -> None:
    matcher = searching(0.0, skip_for=30.0)
    matcher.propose(A)
    matcher.proposal_accepted(A)
    matcher.end_chat(100.0)
    matcher.start_search(100.0)
    assert matcher.choose_candidate({A: ("jazz",)}, 129.0, random.Random(1)) is None
    assert matcher.choose_candidate({A: ("jazz",)}, 130.0, random.Random(1)) == A


def test_a_skip_time_given_with_the_failure_or_the_end_wins() -> None:
    matcher = searching(0.0, skip_for=30.0)
    matcher.propose(A)
    matcher.proposal_failed(A, 10.0, skip_for=2.0)  # e.g. only busy for a moment
    assert matcher.is_skipped(A, 11.9)
    assert not matcher.is_skipped(A, 12.0)
    matcher.propose(B)
    matcher.proposal_accepted(B)
    matcher.end_chat(20.0, skip_for=100.0)
    assert matcher.is_skipped(B, 119.9)
    assert not matcher.is_skipped(B, 120.0)


def test_stop_skips_nobody() -> None:
    matcher = searching(0.0)
    matcher.propose(A)
    matcher.stop()
    matcher.start_search(1.0)
    assert not matcher.is_skipped(A, 1.0)
    assert matcher.choose_candidate({A: ("jazz",)}, 1.0, random.Random(1)) == A


def test_never_skipped_peers_are_not_skipped() -> None:
    assert not make().is_skipped(A, 0.0)


def test_choice_is_deterministic_with_a_seeded_random() -> None:
    matcher = searching(random_after=0.0)
    peers = [bytes([n]) * 8 for n in range(30)]
    forwards = {peer: ("jazz",) for peer in peers}
    backwards = {peer: ("jazz",) for peer in reversed(peers)}
    for seed in range(20):
        first = matcher.choose_candidate(forwards, 0.0, random.Random(seed))
        assert matcher.choose_candidate(forwards, 0.0, random.Random(seed)) == first
        # insertion order of the candidates does not matter, only the seed
        assert matcher.choose_candidate(backwards, 0.0, random.Random(seed)) == first
    # and the randomness is used: different seeds spread the choice
    picks = {matcher.choose_candidate(forwards, 0.0, random.Random(seed)) for seed in range(50)}
    assert len(picks) > 10


def test_random_choice_among_non_sharing_is_deterministic_too() -> None:
    matcher = searching(interests=(), random_after=0.0)
    candidates = {A: (), B: (), C: ()}
    reversed_candidates = dict(reversed(candidates.items()))
    for seed in range(10):
        assert matcher.choose_candidate(candidates, 0.0, random.Random(seed)) == matcher.choose_candidate(
            reversed_candidates, 0.0, random.Random(seed)
        )


# --- on_proposal ----------------------------------------------------------------------------


def test_idle_refuses_not_looking() -> None:
    matcher = make()
    assert matcher.on_proposal(A, ("jazz",), 0.0) == Decision(False, Refusal.NOT_LOOKING)
    assert (matcher.state, matcher.peer) == (MatchState.IDLE, None)


def test_matched_refuses_busy() -> None:
    matcher = bring_to(make(), MatchState.MATCHED, 0.0, peer=HIGHER)
    assert matcher.on_proposal(A, ("jazz",), 1.0) == Decision(False, Refusal.BUSY)
    assert matcher.on_proposal(HIGHER, ("jazz",), 1.0) == Decision(False, Refusal.BUSY)
    assert (matcher.state, matcher.peer) == (MatchState.MATCHED, HIGHER)


def test_proposing_refuses_everyone_else_busy() -> None:
    matcher = bring_to(make(), MatchState.PROPOSING, 0.0, peer=HIGHER)
    assert matcher.on_proposal(LOWER, ("jazz",), 1.0) == Decision(False, Refusal.BUSY)
    assert (matcher.state, matcher.peer) == (MatchState.PROPOSING, HIGHER)


def test_crossing_with_a_higher_peer_is_refused_crossed() -> None:
    matcher = bring_to(make(), MatchState.PROPOSING, 0.0, peer=HIGHER)
    assert matcher.on_proposal(HIGHER, ("jazz",), 1.0) == Decision(False, Refusal.CROSSED)
    assert (matcher.state, matcher.peer) == (MatchState.PROPOSING, HIGHER)


def test_crossing_with_a_lower_peer_is_accepted() -> None:
    matcher = bring_to(make(), MatchState.PROPOSING, 0.0, peer=LOWER)
    assert matcher.on_proposal(LOWER, ("cinema", "jazz"), 1.0) == Decision(True, None, ("jazz", "cinema"))
    assert (matcher.state, matcher.peer) == (MatchState.MATCHED, LOWER)


def test_crossing_with_a_lower_peer_without_common_interests_is_refused() -> None:
    matcher = bring_to(make(random_after=10.0), MatchState.PROPOSING, 0.0, peer=LOWER)
    assert matcher.on_proposal(LOWER, ("chess",), 1.0) == Decision(False, Refusal.NO_COMMON_INTERESTS)
    assert matcher.state is MatchState.PROPOSING


def test_searching_accepts_a_stranger_sharing_an_interest() -> None:
    matcher = searching(0.0)
    decision = matcher.on_proposal(A, ("chess", "cinema", "jazz"), 1.0)
    assert decision == Decision(True, None, ("jazz", "cinema"))  # in our order
    assert (matcher.state, matcher.peer) == (MatchState.MATCHED, A)


def test_searching_refuses_no_common_interests_before_the_random_phase() -> None:
    matcher = searching(0.0, random_after=10.0)
    assert matcher.on_proposal(A, ("chess",), 9.0) == Decision(False, Refusal.NO_COMMON_INTERESTS)
    assert matcher.on_proposal(A, (), 9.0) == Decision(False, Refusal.NO_COMMON_INTERESTS)
    assert (matcher.state, matcher.peer) == (MatchState.SEARCHING, None)
    assert matcher.on_proposal(A, ("chess",), 10.0) == Decision(True, None, ())
    assert (matcher.state, matcher.peer) == (MatchState.MATCHED, A)


def test_interests_only_refuses_strangers_without_common_interests_forever() -> None:
    matcher = searching(0.0, interests_only=True)
    assert matcher.on_proposal(A, ("chess",), 1e9) == Decision(False, Refusal.NO_COMMON_INTERESTS)
    assert matcher.on_proposal(A, ("jazz",), 1e9) == Decision(True, None, ("jazz",))


def test_a_node_without_interests_accepts_anyone() -> None:
    matcher = searching(0.0, interests=())
    assert matcher.on_proposal(A, ("chess",), 0.0) == Decision(True, None, ())


@given(
    ours=st.lists(st.sampled_from(["jazz", "cinema", "chess", "go", "tea", "rain"]),
                  unique=True, max_size=6),
    guess=st.sampled_from(["jazz", "cinema", "chess", "go", "tea", "rain", "knitting"]),
)
def test_a_guessed_interest_reveals_only_itself_never_the_list(ours: list[str], guess: str) -> None:
    """Fault 5: a proposer naming one interest learns whether we share it, nothing more."""
    matcher = searching(0.0, interests=tuple(ours), random_after=0.0)
    decision = matcher.on_proposal(A, (guess,), 1.0)
    assert decision.accept
    assert decision.common == ((guess,) if guess in ours else ())


def test_what_an_accept_reveals_is_the_intersection_in_our_order() -> None:
    matcher = searching(0.0, interests=("tea", "jazz", "cinema", "go"))
    assert matcher.on_proposal(A, ("go", "chess", "jazz"), 1.0).common == ("jazz", "go")


def test_a_proposal_found_under_the_anyone_key_reveals_nothing_and_is_answered_in_random() -> None:
    matcher = searching(0.0, interests=("jazz",), random_after=5.0)
    assert matcher.on_proposal(A, (), 1.0) == Decision(False, Refusal.NO_COMMON_INTERESTS)
    assert matcher.on_proposal(A, (), 5.0) == Decision(True, None, ())


def test_refusal_reasons_are_the_wire_strings() -> None:
    assert {reason.value for reason in Refusal} == {"busy", "crossed", "not-looking", "no-common-interests",
                                                    "other-lane", "no-proof"}
    assert Refusal("crossed") is Refusal.CROSSED


def test_decision_defaults() -> None:
    assert Decision(True) == Decision(True, None, ())


# --- crossed proposals: two real matchers ------------------------------------------------


@dataclass
class Pair:
    """Two matchers that propose to each other at the same moment."""

    low: Matcher
    high: Matcher

    @classmethod
    def crossing(cls, low_interests: tuple[str, ...] = ("jazz",),
                 high_interests: tuple[str, ...] = ("jazz", "chess")) -> Pair:
        low = Matcher(local_id=LOWER, interests=low_interests)
        high = Matcher(local_id=HIGHER, interests=high_interests)
        for matcher, other in ((low, high), (high, low)):
            matcher.start_search(0.0)
            matcher.propose(other.local_id)
        return cls(low, high)

    def deliver_proposal(self, to: Matcher) -> Decision:
        sender = self.high if to is self.low else self.low
        return to.on_proposal(sender.local_id, sender.interests, 1.0)

    @staticmethod
    def deliver_answer(proposer: Matcher, answerer: Matcher, decision: Decision) -> None:
        if decision.accept:
            proposer.proposal_accepted(answerer.local_id)
        else:
            proposer.proposal_failed(answerer.local_id, 2.0)


@pytest.mark.parametrize("proposal_order", ["low-first", "high-first"])
@pytest.mark.parametrize("answer_order", ["low-first", "high-first"])
def test_crossed_proposals_end_in_exactly_one_chat(proposal_order: str, answer_order: str) -> None:
    pair = Pair.crossing()
    low, high = pair.low, pair.high
    # each receives the other's proposal while still proposing
    if proposal_order == "low-first":
        to_low = pair.deliver_proposal(low)
        to_high = pair.deliver_proposal(high)
    else:
        to_high = pair.deliver_proposal(high)
        to_low = pair.deliver_proposal(low)
    # exactly one proposal is accepted: the smaller peer id's
    assert to_low == Decision(False, Refusal.CROSSED)  # low refuses high's proposal
    assert to_high == Decision(True, None, ("jazz",))  # high accepts low's
    assert high.state is MatchState.MATCHED
    assert low.state is MatchState.PROPOSING
    # the answers come back, in either order
    answers = [(low, high, to_high), (high, low, to_low)]
    if answer_order == "high-first":
        answers.reverse()
    for proposer, answerer, decision in answers:
        pair.deliver_answer(proposer, answerer, decision)
    assert (low.state, low.peer) == (MatchState.MATCHED, HIGHER)
    assert (high.state, high.peer) == (MatchState.MATCHED, LOWER)


def test_an_answer_before_the_crossing_proposal_arrives() -> None:
    pair = Pair.crossing()
    low, high = pair.low, pair.high
    to_high = pair.deliver_proposal(high)  # high accepts low's proposal...
    pair.deliver_answer(low, high, to_high)  # ...low hears it at once
    assert low.state is MatchState.MATCHED
    to_low = pair.deliver_proposal(low)  # then high's proposal reaches low
    assert to_low == Decision(False, Refusal.BUSY)
    pair.deliver_answer(high, low, to_low)
    assert (low.peer, high.peer) == (HIGHER, LOWER)
    assert low.state is high.state is MatchState.MATCHED


# --- many matchers, random interleavings -------------------------------------------------


POOL = ("jazz", "chess", "cinema")


@dataclass
class Simulation:
    """N matchers exchanging proposals in a random order, with a fake clock.

    Messages are delivered in any order; every proposal is answered
    eventually. The "DHT" returns every other node (stale records included)
    with the interests it shares with the searcher, and in the random phase
    every node that advertises the general key.
    """

    rng: random.Random
    nodes: dict[bytes, Matcher]
    now: float = 0.0
    in_flight: list[tuple[str, bytes, bytes, Decision | None]] = field(default_factory=list)

    def candidates(self, searcher: Matcher) -> dict[bytes, tuple[str, ...]]:
        found: dict[bytes, tuple[str, ...]] = {}
        random_phase = searcher.phase(self.now) is Phase.RANDOM
        for peer_id, node in self.nodes.items():
            shared = tuple(i for i in searcher.interests if i in node.interests)
            if shared or (random_phase and node.advertises_anyone):
                found[peer_id] = shared
        return found

    def step(self) -> None:
        action = self.rng.choice(["propose", "propose", "deliver", "deliver", "deliver", "tick", "end"])
        if action == "propose":
            searchers = [n for n in self.nodes.values() if n.state is MatchState.SEARCHING]
            if searchers:
                node = self.rng.choice(searchers)
                peer = node.choose_candidate(self.candidates(node), self.now, self.rng)
                if peer is not None:
                    assert peer != node.local_id
                    node.propose(peer)
                    self.in_flight.append(("propose", node.local_id, peer, None))
        elif action == "deliver" and self.in_flight:
            self.deliver(self.in_flight.pop(self.rng.randrange(len(self.in_flight))))
        elif action == "tick":
            self.now += self.rng.choice([0.1, 1.0, 5.0, 20.0])
        elif action == "end":
            self.end_a_chat()

    def deliver(self, message: tuple[str, bytes, bytes, Decision | None]) -> None:
        kind, sender, receiver, decision = message
        if kind == "propose":
            answer = self.nodes[receiver].on_proposal(sender, self.nodes[sender].interests, self.now)
            self.in_flight.append(("answer", receiver, sender, answer))
        else:
            assert decision is not None
            proposer = self.nodes[receiver]
            if decision.accept:
                proposer.proposal_accepted(sender)
            else:
                proposer.proposal_failed(sender, self.now)

    def end_a_chat(self) -> None:
        """A matched pair with nothing in flight ends its chat; both search again."""
        busy = {peer for _k, sender, receiver, _d in self.in_flight for peer in (sender, receiver)}
        pairs = [
            (node, self.nodes[node.peer])
            for node in self.nodes.values()
            if node.state is MatchState.MATCHED and node.peer is not None and node.local_id < node.peer
            and node.local_id not in busy and node.peer not in busy
        ]
        if pairs:
            for node in self.rng.choice(pairs):
                node.end_chat(self.now)
                node.start_search(self.now)

    def check(self) -> None:
        """At every moment: nobody is matched to a peer that is with someone else."""
        partners: dict[bytes, bytes] = {}
        for node in self.nodes.values():
            if node.state is MatchState.MATCHED:
                assert node.peer is not None and node.peer != node.local_id
                partner = self.nodes[node.peer]
                # the partner is with us, or still waiting for our accept
                assert partner.peer == node.local_id, (node.local_id, node.peer, partner.peer)
                assert partner.state in (MatchState.MATCHED, MatchState.PROPOSING)
                assert node.peer not in partners, "two nodes matched to the same peer"
                partners[node.peer] = node.local_id

    def drain(self) -> None:
        while self.in_flight:
            self.deliver(self.in_flight.pop(self.rng.randrange(len(self.in_flight))))
            self.check()

    def check_settled(self) -> None:
        """With nothing in flight, every match is mutual and nobody waits for an answer."""
        for node in self.nodes.values():
            assert node.state in (MatchState.SEARCHING, MatchState.MATCHED)
            if node.state is MatchState.MATCHED:
                partner = self.nodes[node.peer]  # type: ignore[index]
                assert (partner.state, partner.peer) == (MatchState.MATCHED, node.local_id)


def build_simulation(rng: random.Random, size: int) -> Simulation:
    ids = rng.sample([bytes([n, m]) for n in range(4) for m in range(4)], size)
    nodes = {}
    for peer_id in ids:
        nodes[peer_id] = Matcher(
            local_id=peer_id,
            interests=tuple(rng.sample(POOL, rng.randint(0, 2))),
            random_after=rng.choice([0.0, 5.0, 30.0]),
            interests_only=rng.random() < 0.2,
            skip_for=rng.choice([0.0, 3.0, 30.0]),
        )
        nodes[peer_id].start_search(0.0)
    return Simulation(rng, nodes)


def run_simulation(rng: random.Random, size: int, steps: int) -> Simulation:
    simulation = build_simulation(rng, size)
    for _ in range(steps):
        simulation.step()
        simulation.check()
    simulation.drain()
    simulation.check_settled()
    return simulation


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False), size=st.integers(2, 8), steps=st.integers(0, 150))
def test_random_interleavings_never_double_or_asymmetric_matches(
    rng: random.Random, size: int, steps: int
) -> None:
    run_simulation(rng, size, steps)


def test_the_simulation_does_make_matches_and_crossings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against a vacuous simulation: matches and crossed refusals do happen."""
    matched = crossed = 0
    original = Matcher.on_proposal

    def counting(self: Matcher, *args: object) -> Decision:
        nonlocal crossed
        decision = original(self, *args)  # type: ignore[arg-type]
        crossed += decision.refusal is Refusal.CROSSED
        return decision

    monkeypatch.setattr(Matcher, "on_proposal", counting)
    for seed in range(200):
        simulation = run_simulation(random.Random(seed), 6, 120)
        matched += sum(node.state is MatchState.MATCHED for node in simulation.nodes.values())
    assert matched > 100
    assert crossed > 0


def test_refuse_for_blocks_a_proposer_for_a_while() -> None:
    matcher = Matcher(local_id=b"\x05" * 8, interests=("jazz",))
    matcher.start_search(0.0)
    matcher.refuse_for(b"\x01" * 8, 1.0, 60.0)
    assert matcher.on_proposal(b"\x01" * 8, ("jazz",), 30.0) == Decision(False, Refusal.BUSY)
    assert matcher.state is MatchState.SEARCHING
    assert matcher.on_proposal(b"\x01" * 8, ("jazz",), 61.0).accept
