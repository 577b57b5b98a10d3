"""Token buckets and server limits (discovery/budget.py), with time passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.discovery.budget import (
    PEER_BURST,
    SEARCH_BURST,
    SEARCH_FIRST,
    SEARCH_FIRST_SECONDS,
    SEARCH_MAX_DEBT,
    SEARCH_RATE,
    ServerLimits,
    TokenBucket,
    search_budget,
)


def test_a_bucket_starts_full_and_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(2.0, 10.0, now=0.0)
    assert bucket.tokens(0.0) == 10.0
    assert all(bucket.try_take(0.0) for _ in range(10))
    assert not bucket.try_take(0.0)
    assert bucket.tokens(1.0) == pytest.approx(2.0)
    assert bucket.tokens(100.0) == 10.0  # never above the burst
    assert bucket.spent == 10.0


def test_a_failed_take_takes_nothing() -> None:
    bucket = TokenBucket(1.0, 3.0, now=0.0)
    assert not bucket.try_take(0.0, 4.0)
    assert bucket.tokens(0.0) == 3.0 and bucket.spent == 0.0


def test_spending_runs_into_debt_down_to_its_limit_and_ready_at_waits_it_out() -> None:
    bucket = TokenBucket(1.0, 10.0, now=0.0, max_debt=20.0)
    bucket.spend(0.0, 15.0)
    assert bucket.tokens(0.0) == -5.0
    bucket.spend(0.0, 100.0)
    assert bucket.tokens(0.0) == -20.0  # the debt is bounded
    assert bucket.ready_at(0.0, 4.0) == pytest.approx(24.0)
    assert bucket.ready_at(0.0, 1000.0) == pytest.approx(30.0)  # at most a full bucket
    bucket.spend(0.0, 0.0)  # nothing
    bucket.spend(0.0, -3.0)
    assert bucket.tokens(0.0) == -20.0
    assert bucket.ready_at(30.0, 10.0) == 30.0


def test_time_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(1.0, 5.0, now=10.0)
    assert bucket.try_take(10.0, 5.0)
    assert bucket.tokens(5.0) == 0.0


@pytest.mark.parametrize("rate, burst, debt, initial", [
    (0.0, 1.0, 0.0, None), (1.0, 0.5, 0.0, None), (1.0, 1.0, -1.0, None), (1.0, 1.0, 0.0, -1.0)])
def test_bad_buckets_are_refused(rate, burst, debt, initial) -> None:
    with pytest.raises(ValueError, match="bad token bucket"):
        TokenBucket(rate, burst, 0.0, max_debt=debt, initial=initial)


def test_a_first_allowance_is_spent_once_and_never_saved_up_again() -> None:
    bucket = search_budget(0.0)
    assert bucket.tokens(0.0) == SEARCH_FIRST > SEARCH_BURST
    bucket.spend(5.0, 10.0)
    assert bucket.tokens(9.0) == SEARCH_FIRST - 10.0  # not refilled above the burst
    # what is left of it lapses after the first 10 s: from then on, the rate holds
    assert bucket.tokens(SEARCH_FIRST_SECONDS) == SEARCH_BURST
    bucket.spend(20.0, SEARCH_BURST)
    assert bucket.tokens(1000.0) == SEARCH_BURST


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 50)), max_size=60))
def test_a_search_budget_never_lets_more_through_than_burst_plus_rate_times_time(steps) -> None:
    """Whatever a node spends, the walks it is allowed (waiting for ``ready_at``) stay
    within the burst plus the rate over the elapsed time."""
    bucket = search_budget(0.0)
    now = allowed = 0.0
    for wait, cost in steps:
        now = max(now + wait, bucket.ready_at(now, cost))
        if bucket.tokens(now) >= min(cost, bucket.burst):
            bucket.spend(now, cost)
            allowed += cost
    assert allowed <= SEARCH_FIRST + SEARCH_RATE * now + 50.0 + 1e-6  # one step may overdraw
    assert bucket.tokens(now) >= -SEARCH_MAX_DEBT


def test_a_server_sheds_a_peer_over_its_rate_and_not_the_others() -> None:
    limits = ServerLimits(0.0, peer_rate=1.0, peer_burst=5.0)
    assert [limits.allow_request("greedy", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limits.allow_request("polite", 0.0)
    assert limits.allow_request("greedy", 1.0)  # one more after a second
    assert limits.stats.shed_peer_rate == 2 and limits.stats.allowed == 7


def test_a_server_sheds_everyone_over_its_total_rate() -> None:
    limits = ServerLimits(0.0, peer_burst=PEER_BURST, server_rate=1.0, server_burst=3.0)
    answered = [limits.allow_request(peer, 0.0) for peer in range(5)]
    assert answered == [True, True, True, False, False]
    assert limits.stats.shed_server_rate == 2 and limits.stats.shed == 2


def test_streams_per_peer_are_bounded_and_given_back() -> None:
    limits = ServerLimits(0.0, streams_per_peer=2)
    assert limits.open_stream("a") and limits.open_stream("a")
    assert not limits.open_stream("a")
    assert limits.open_stream("b")
    limits.close_stream("a")
    assert limits.streams("a") == 1 and limits.open_stream("a")
    for _ in range(3):
        limits.close_stream("a")
    assert limits.streams("a") == 0
    assert limits.stats.shed_streams == 1


def test_the_per_peer_books_are_bounded() -> None:
    limits = ServerLimits(0.0, max_peers=3, peer_burst=1.0)
    for peer in range(10):
        limits.allow_request(peer, 0.0)
    assert limits.tracked_peers() == 3
    # the oldest were forgotten: peer 0 starts again with a full bucket
    assert limits.allow_request(0, 0.0)
    assert not limits.allow_request(9, 0.0)


@pytest.mark.parametrize("streams, peers", [(0, 1), (1, 0)])
def test_bad_server_limits_are_refused(streams, peers) -> None:
    with pytest.raises(ValueError, match="bad server limits"):
        ServerLimits(0.0, streams_per_peer=streams, max_peers=peers)
