"""Token buckets and cool-downs (safety/limits.py), time passed in."""

from __future__ import annotations

import pytest

from strangers.errors import ConfigError
from strangers.safety.limits import MESSAGES, PROPOSALS, Limit, PeerLimits, TokenBucket, Verdict


def test_a_burst_then_the_rate() -> None:
    bucket = TokenBucket.full(Limit(rate=2.0, burst=3, strikes=100), 0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.DENY]
    assert bucket.take(0.4) is Verdict.DENY  # 0.8 tokens
    assert bucket.take(0.5) is Verdict.ALLOW  # 1.0 token
    assert bucket.take(100.0) is Verdict.ALLOW  # refilled, but never beyond the burst
    assert bucket.tokens == 2.0


def test_a_clock_going_back_earns_nothing() -> None:
    bucket = TokenBucket.full(Limit(rate=1.0, burst=1, strikes=100), 10.0)
    assert bucket.take(10.0) is Verdict.ALLOW
    assert bucket.take(5.0) is Verdict.DENY
    assert bucket.take(10.5) is Verdict.DENY
    assert bucket.take(11.0) is Verdict.ALLOW


def test_keeping_on_over_the_limit_is_a_flood_and_cools_down() -> None:
    limit = Limit(rate=1.0, burst=2, strikes=3, cooldown=30.0)
    bucket = TokenBucket.full(limit, 0.0)
    verdicts = [bucket.take(0.0) for _ in range(5)]
    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.DENY, Verdict.DENY, Verdict.FLOODING]
    assert bucket.take(10.0) is Verdict.DENY  # cooling, though tokens came back
    assert bucket.take(29.9) is Verdict.DENY
    assert bucket.take(30.0) is Verdict.ALLOW


def test_an_allowed_one_resets_the_strikes() -> None:
    bucket = TokenBucket.full(Limit(rate=1.0, burst=1, strikes=2), 0.0)
    assert bucket.take(0.0) is Verdict.ALLOW
    assert bucket.take(0.0) is Verdict.DENY
    assert bucket.take(1.0) is Verdict.ALLOW
    assert bucket.take(1.0) is Verdict.DENY  # one strike again, not two


def test_peers_have_their_own_buckets_and_memory_is_bounded() -> None:
    limits = PeerLimits(Limit(rate=1.0, burst=1, strikes=2, cooldown=60), tracked=3)
    assert limits.take(b"a", 0.0) is Verdict.ALLOW
    assert limits.take(b"b", 0.0) is Verdict.ALLOW
    assert limits.take(b"a", 0.0) is Verdict.DENY
    assert limits.take(b"a", 0.0) is Verdict.FLOODING
    assert limits.cooling(b"a", 1.0) and not limits.cooling(b"b", 1.0)
    assert limits.denied == 2 and limits.floods == 1
    for peer in (b"c", b"d", b"e", b"f"):
        limits.take(peer, 1.0)
        assert len(limits) <= 3
    assert limits.cooling(b"a", 2.0)  # a cooling peer outlives quiet ones
    assert not limits.cooling(b"zzz", 2.0)


def test_a_thousand_peers_stay_within_the_bound() -> None:
    limits = PeerLimits(PROPOSALS, tracked=64)
    for index in range(1000):
        limits.take(index.to_bytes(4, "big"), float(index))
    assert len(limits) == 64


def test_cool_refuses_a_peer_for_the_cooldown() -> None:
    limits = PeerLimits(Limit(rate=1.0, burst=5, cooldown=10.0))
    limits.cool(b"a", 0.0)
    assert limits.take(b"a", 5.0) is Verdict.DENY
    assert limits.take(b"a", 10.0) is Verdict.ALLOW


def test_the_message_budget_lets_people_type_and_stops_floods() -> None:
    bucket = TokenBucket.full(MESSAGES, 0.0)
    # someone typing fast: a message (and a typing notice) every second for ten minutes
    assert all(bucket.take(t / 2) is Verdict.ALLOW for t in range(1200))
    flood = TokenBucket.full(MESSAGES, 0.0)
    verdicts = [flood.take(0.0) for _ in range(200)]
    assert Verdict.FLOODING in verdicts


@pytest.mark.parametrize("kwargs", [dict(rate=0, burst=1), dict(rate=1, burst=0.5),
                                    dict(rate=1, burst=1, strikes=0),
                                    dict(rate=1, burst=1, cooldown=-1)])
def test_bad_limits(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Limit(**kwargs)
    with pytest.raises(ConfigError):
        PeerLimits(PROPOSALS, tracked=0)
