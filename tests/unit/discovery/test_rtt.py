"""The RTT estimator (RFC 6298) and the timeouts derived from it, with explicit times."""

from __future__ import annotations

import pytest

from strangers.discovery.rtt import (
    ANSWER,
    BOOTSTRAP_DIAL,
    CHAT_HANDSHAKE,
    DIAL,
    GRANULARITY,
    MARGIN,
    MAX_SAMPLE,
    RELAYED_DIAL,
    RELAYED_SETUP_ROUND_TRIPS,
    RPC_CONNECTED,
    RPC_DIAL,
    SETUP_ROUND_TRIPS,
    Bounds,
    RoundTripTimer,
    RttEstimator,
    backoff,
    bootstrap_dial_timeout,
    dial_bounds,
    is_relayed,
)

A, B = b"peer-a", b"peer-b"


def test_no_sample_gives_the_old_fixed_constants():
    rtt = RttEstimator()
    assert rtt.rto(A, 0.0) is None
    assert rtt.timeout(A, 0.0, DIAL) == 1.0
    assert rtt.timeout(A, 0.0, ANSWER) == 3.0
    assert rtt.timeout(None, 0.0, RPC_CONNECTED) == 2.0
    assert rtt.timeout(None, 0.0, RPC_DIAL) == 2.0


def test_first_sample_follows_rfc_6298():
    rtt = RttEstimator()
    rtt.observe(A, 0.3, now=1.0)
    state = rtt.estimate(A, 1.0)
    assert state is not None
    assert state.srtt == pytest.approx(0.3)
    assert state.rttvar == pytest.approx(0.15)
    assert rtt.rto(A, 1.0) == pytest.approx(0.3 + 4 * 0.15)


def test_later_samples_follow_rfc_6298():
    rtt = RttEstimator()
    rtt.observe(A, 0.3, now=0.0)
    rtt.observe(A, 0.5, now=1.0)
    # RTTVAR first, with the old SRTT; then SRTT
    rttvar = 0.75 * 0.15 + 0.25 * abs(0.3 - 0.5)
    srtt = 0.875 * 0.3 + 0.125 * 0.5
    state = rtt.estimate(A, 1.0)
    assert state is not None and state.samples == 2
    assert state.rttvar == pytest.approx(rttvar)
    assert state.srtt == pytest.approx(srtt)
    assert rtt.rto(A, 1.0) == pytest.approx(srtt + 4 * rttvar)


def test_variance_term_never_below_the_granularity():
    rtt = RttEstimator()
    for step in range(200):
        rtt.observe(A, 0.002, now=float(step))
    assert rtt.rto(A, 200.0) == pytest.approx(0.002 + GRANULARITY)


def test_a_300_ms_path_gets_timeouts_long_enough_for_a_fresh_connection():
    """A connection setup took 8 round trips of 300 ms: the proposal dial must
    allow more than that (the old 1 s could not), within the ceiling."""
    rtt = RttEstimator()
    rtt.observe(A, SETUP_ROUND_TRIPS * 0.3, now=0.0, round_trips=SETUP_ROUND_TRIPS)
    dial = rtt.timeout(A, 0.0, DIAL)
    assert SETUP_ROUND_TRIPS * 0.3 < dial <= DIAL.ceiling
    # a settled path: 20 steady samples shrink the variance, the timeout stays above 8 RTT
    for step in range(20):
        rtt.observe(A, 0.3, now=float(step))
    settled = rtt.timeout(A, 20.0, DIAL)
    assert SETUP_ROUND_TRIPS * 0.3 < settled < dial
    # with one loss stall (a 200 ms retransmission plus a round trip) still inside
    assert settled > SETUP_ROUND_TRIPS * 0.3 + 0.5
    assert rtt.timeout(A, 20.0, RPC_DIAL) > (SETUP_ROUND_TRIPS + 1) * 0.3


def test_loopback_keeps_the_floors():
    rtt = RttEstimator()
    for step in range(10):
        rtt.observe(A, 0.03, now=float(step), round_trips=SETUP_ROUND_TRIPS)
        rtt.observe(A, 0.002, now=float(step))
    assert rtt.timeout(A, 10.0, DIAL) == DIAL.floor
    assert rtt.timeout(A, 10.0, ANSWER) == ANSWER.floor
    assert rtt.timeout(A, 10.0, RPC_CONNECTED) == RPC_CONNECTED.floor


def test_ceiling_bounds_a_huge_estimate():
    rtt = RttEstimator()
    rtt.observe(A, 30.0, now=0.0)
    assert rtt.timeout(A, 0.0, DIAL) == DIAL.ceiling
    assert rtt.timeout(A, 0.0, RPC_DIAL) == RPC_DIAL.ceiling


def test_not_adaptive_pins_the_floors():
    rtt = RttEstimator(adaptive=False)
    rtt.observe(A, 2.4, now=0.0, round_trips=SETUP_ROUND_TRIPS)
    assert rtt.timeout(A, 0.0, DIAL) == 1.0
    assert rtt.timeout(A, 0.0, RPC_DIAL) == 2.0


def test_unknown_peer_gets_the_node_estimate():
    rtt = RttEstimator()
    rtt.observe(A, 0.3, now=0.0)
    assert rtt.rto(B, 0.0) == rtt.rto(A, 0.0)
    assert rtt.rto(None, 0.0) == rtt.rto(A, 0.0)
    assert rtt.peers() == 1


def test_node_only_samples_do_not_create_peers():
    rtt = RttEstimator()
    rtt.observe(None, 0.2, now=0.0)
    assert rtt.peers() == 0
    assert rtt.rto(A, 0.0) == pytest.approx(0.2 + 4 * 0.1)


def test_per_peer_estimates_are_separate_and_the_node_one_mixes():
    rtt = RttEstimator()
    rtt.observe(A, 0.002, now=0.0)
    rtt.observe(B, 0.3, now=0.0)
    rto_a, rto_b, rto_node = rtt.rto(A, 0.0), rtt.rto(B, 0.0), rtt.rto(None, 0.0)
    assert rto_a is not None and rto_b is not None and rto_node is not None
    assert rto_a < rto_node and rto_b == pytest.approx(0.3 + 4 * 0.15)
    # the node's spread covers its slowest peer better than the fast peer's own
    assert rto_node > rto_a


def test_a_stale_peer_estimate_gives_way_to_the_node_one_and_restarts():
    rtt = RttEstimator(stale_after=100.0)
    rtt.observe(A, 0.3, now=0.0)
    rtt.observe(B, 0.01, now=150.0)
    node_rto = rtt.rto(None, 150.0)
    assert rtt.rto(A, 150.0) == node_rto  # A's own is stale
    rtt.observe(A, 0.05, now=160.0)  # a fresh start, not a smoothing of the stale one
    state = rtt.estimate(A, 160.0)
    assert state is not None and state.samples == 1 and state.srtt == pytest.approx(0.05)


def test_bounded_least_recently_updated_goes_first():
    rtt = RttEstimator(max_peers=2)
    rtt.observe(b"1", 0.1, now=0.0)
    rtt.observe(b"2", 0.2, now=1.0)
    rtt.observe(b"1", 0.1, now=2.0)  # refreshed: now the newest
    rtt.observe(b"3", 0.3, now=3.0)
    assert rtt.peers() == 2
    one, two = rtt.estimate(b"1", 3.0), rtt.estimate(b"2", 3.0)
    assert one is not None and one.samples == 2
    assert two is rtt.node  # evicted: falls back to the node's


@pytest.mark.parametrize("elapsed", [-0.1, MAX_SAMPLE + 1])
def test_nonsense_samples_are_ignored(elapsed):
    rtt = RttEstimator()
    rtt.observe(A, elapsed, now=0.0)
    rtt.observe(A, 0.1, now=0.0, round_trips=0)
    assert rtt.rto(A, 0.0) is None and rtt.peers() == 0


def test_round_trips_divide_the_sample():
    rtt = RttEstimator()
    rtt.observe(A, 2.4, now=0.0, round_trips=8)
    state = rtt.estimate(A, 0.0)
    assert state is not None and state.srtt == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs", [{"max_peers": 0}, {"stale_after": 0.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="bad estimator settings"):
        RttEstimator(**kwargs)


@pytest.mark.parametrize("args", [(0, 1.0, 2.0), (1, 0.0, 2.0), (1, 3.0, 2.0)])
def test_bad_bounds_are_refused(args):
    with pytest.raises(ValueError, match="bad timeout bounds"):
        Bounds(*args)


# -- the chat handshake, bootstrap dials, and probes timed by the chat ------------------------


def test_the_chat_handshake_keeps_its_old_5_s_on_fast_paths_and_grows_on_slow_ones():
    rtt = RttEstimator()
    assert rtt.timeout(A, 0.0, CHAT_HANDSHAKE) == 5.0  # no sample: the old constant
    for _ in range(8):
        rtt.observe(A, 0.003, now=0.0)  # loopback
    assert rtt.timeout(A, 0.0, CHAT_HANDSHAKE) == 5.0
    slow = RttEstimator()
    for _ in range(8):
        slow.observe(A, 1.5, now=0.0)  # 1.5 s (a congested mobile link): 5 s is two round trips and a loss
    timeout = slow.timeout(A, 0.0, CHAT_HANDSHAKE)
    assert 5.0 < timeout <= CHAT_HANDSHAKE.ceiling
    assert timeout >= MARGIN * 2 * 1.5
    for _ in range(8):
        slow.observe(A, 30.0, now=0.0)
    assert slow.timeout(A, 0.0, CHAT_HANDSHAKE) == CHAT_HANDSHAKE.ceiling


def test_bootstrap_dials_double_from_the_floor_up_to_the_ceiling():
    assert [backoff(BOOTSTRAP_DIAL, n) for n in range(5)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert backoff(BOOTSTRAP_DIAL, 10_000) == BOOTSTRAP_DIAL.ceiling
    with pytest.raises(ValueError, match="bad attempt"):
        backoff(BOOTSTRAP_DIAL, -1)


def test_the_bootstrap_dial_starts_at_the_floor_and_grows_with_attempts_and_the_estimate():
    rtt = RttEstimator()
    # no sample at start-up: the floor, doubled for each attempt no seed answered
    assert [bootstrap_dial_timeout(rtt, A, 0.0, n) for n in range(4)] == [5.0, 10.0, 20.0, 30.0]
    assert bootstrap_dial_timeout(rtt, None, 0.0) == BOOTSTRAP_DIAL.floor
    # a slow path known from an earlier sample: what its round trips call for
    rtt.observe(A, 3.0, now=0.0)
    assert bootstrap_dial_timeout(rtt, A, 0.0) == rtt.timeout(A, 0.0, BOOTSTRAP_DIAL) > 5.0
    assert bootstrap_dial_timeout(rtt, A, 0.0) <= BOOTSTRAP_DIAL.ceiling


@pytest.mark.parametrize(("addrs", "relayed"), [
    ([], False),
    (["/ip4/203.0.113.7/tcp/4001"], False),
    (["/ip4/203.0.113.7/tcp/4001/p2p/QmRelay/p2p-circuit"], True),
    (["/ip4/10.0.0.2/tcp/4001", "/ip6/2001:db8::1/tcp/4001/p2p/QmRelay/p2p-circuit"], True),
])
def test_a_relayed_address_is_told_by_its_circuit(addrs, relayed):
    assert is_relayed(addrs) is relayed
    assert is_relayed(iter(addrs)) is relayed  # any iterable, read once
    assert dial_bounds(relayed) is (RELAYED_DIAL if relayed else DIAL)


def test_a_relayed_dial_gets_the_round_trips_of_two_paths_and_a_relay():
    # a stream to the relay, HOP and STOP, then a connection and stream over the circuit,
    # whose every round trip crosses two paths
    assert RELAYED_SETUP_ROUND_TRIPS == SETUP_ROUND_TRIPS + 2 + 2 * SETUP_ROUND_TRIPS == 8
    assert RELAYED_DIAL.round_trips == RELAYED_SETUP_ROUND_TRIPS
    assert RELAYED_DIAL.floor > DIAL.floor and RELAYED_DIAL.ceiling > DIAL.ceiling
    # once a round trip is known, the deadline scales with the round trips: four times a
    # direct dial's (at 100 ms, 4.8 s against 1.2 s, for a dial of ~0.8 s with no loss)
    rtt = RttEstimator()
    rtt.observe(A, 0.1, now=0.0)
    assert rtt.timeout(A, 0.0, DIAL) == pytest.approx(1.2)
    assert rtt.timeout(A, 0.0, RELAYED_DIAL) == pytest.approx(4 * rtt.timeout(A, 0.0, DIAL))


def test_a_probe_is_timed_once_and_unknown_answers_give_nothing():
    timer = RoundTripTimer()
    timer.sent(("ping", 1), 10.0)
    timer.sent(("text", 1), 10.5)
    assert timer.answered(("ping", 1), 10.25) == pytest.approx(0.25)
    assert timer.answered(("ping", 1), 10.3) is None  # a second pong: no sample
    assert timer.answered(("ping", 2), 10.3) is None  # never sent
    assert timer.answered(("text", 1), 10.4) is None  # a clock going back: no sample
    assert len(timer) == 0


def test_the_timer_forgets_the_oldest_probe_first():
    timer = RoundTripTimer(max_pending=3)
    for n in range(5):
        timer.sent(n, float(n))
    assert len(timer) == 3
    assert timer.answered(0, 9.0) is None and timer.answered(1, 9.0) is None
    assert timer.answered(4, 9.0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="bad max_pending"):
        RoundTripTimer(max_pending=0)
