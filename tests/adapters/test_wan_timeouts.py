"""Timeouts from measured round trips, in the adapters (fake hosts, MockClock).

A 300 ms path: a fresh connection of py-libp2p as it comes takes about 8
round trips, 2.4 s (ours: ``SETUP_ROUND_TRIPS``, see
``node/libp2p/multistream.py``; a peer far enough away costs as much). The
old fixed 1 s proposal dial gave up on every such candidate; with the node's
round-trip estimate (here: a bootstrap connection that took that long) the
same dial goes through. The match service and the Kademlia stream pool feed
the estimator from what they time themselves.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo
from libp2p_fakes import FakeHost, FakeStream, make_peer

from strangers.discovery.matcher import Matcher
from strangers.discovery.proposal import Accept
from strangers.discovery.rtt import (
    BOOTSTRAP_DIAL,
    CONNECT_ROUND_TRIPS,
    DIAL,
    SETUP_ROUND_TRIPS,
    RttEstimator,
    backoff,
)
from strangers.node.libp2p.kad import KAD_PROTOCOL, StrangersDHT
from strangers.node.libp2p.kadpool import StreamPool
from strangers.node.libp2p.streamio import read_uvarint_frame, uvarint
from strangers.node.matching import (
    DIAL_TIMEOUT,
    FIXED_TIMEOUTS_ENV,
    MATCH_PROTOCOL,
    MatchService,
    node_rtt_estimator,
)

ALICE, BOB, SEED = make_peer("alice"), make_peer("bob"), make_peer("seed")
MATCH_ID = bytes(range(16))
RTT = 0.3
PLAIN_SETUP_ROUND_TRIPS = 8
"""A dial and a stream with py-libp2p's own multistream-select (2.4 s at 300 ms)."""


def _services(nursery: trio.Nursery, rtt: RttEstimator) -> tuple[MatchService, FakeHost]:
    alice_host, bob_host = FakeHost(ALICE.peer_id, nursery), FakeHost(BOB.peer_id, nursery)
    alice_host.connect(bob_host)
    alice = Matcher(local_id=ALICE.peer_id.to_bytes(), interests=("jazz",), random_after=10.0)
    bob = Matcher(local_id=BOB.peer_id.to_bytes(), interests=("jazz",), random_after=10.0)
    now = trio.current_time()
    alice.start_search(now)
    bob.start_search(now)
    alice.propose(BOB.peer_id.to_bytes())
    bob_service = MatchService(bob_host, bob, on_accepted=lambda pending: None)
    bob_host.set_stream_handler(MATCH_PROTOCOL, bob_service.handle_stream)
    return MatchService(alice_host, alice, on_accepted=lambda pending: None, rtt=rtt), alice_host


def _slow_path_estimate(adaptive: bool = True) -> RttEstimator:
    """What the node learnt from its bootstrap connection over a 300 ms path."""
    rtt = RttEstimator(adaptive=adaptive)
    rtt.observe(SEED.peer_id.to_bytes(), CONNECT_ROUND_TRIPS * RTT, 0.0,
                round_trips=CONNECT_ROUND_TRIPS)
    return rtt


async def _propose_over_slow_dial(rtt: RttEstimator):
    async with trio.open_nursery() as nursery:
        alice, alice_host = _services(nursery, rtt)
        alice_host.dial_delay = PLAIN_SETUP_ROUND_TRIPS * RTT  # 2.4 s to open the match stream
        started = trio.current_time()
        answer = await alice.propose(_info(), MATCH_ID, ("jazz",))
        took = trio.current_time() - started
        nursery.cancel_scope.cancel()
    return answer, took


def _info() -> PeerInfo:
    return PeerInfo(BOB.peer_id, [])


async def test_old_fixed_dial_timeout_skips_a_candidate_300_ms_away(autojump_clock):
    answer, took = await _propose_over_slow_dial(_slow_path_estimate(adaptive=False))
    assert answer is None
    assert took == pytest.approx(DIAL_TIMEOUT, abs=0.1)


async def test_measured_round_trips_let_a_candidate_300_ms_away_answer(autojump_clock):
    rtt = _slow_path_estimate()
    assert rtt.timeout(BOB.peer_id.to_bytes(), 0.0, DIAL) > PLAIN_SETUP_ROUND_TRIPS * RTT
    answer, took = await _propose_over_slow_dial(rtt)
    assert answer == Accept(MATCH_ID, ("jazz",))
    assert took >= PLAIN_SETUP_ROUND_TRIPS * RTT


async def test_a_proposal_feeds_the_estimate_of_its_peer(autojump_clock):
    rtt = RttEstimator()
    async with trio.open_nursery() as nursery:
        alice, alice_host = _services(nursery, rtt)
        alice_host.dial_delay = SETUP_ROUND_TRIPS * 0.1  # a dial: its round trips of 100 ms
        assert await alice.propose(_info(), MATCH_ID, ("jazz",)) == Accept(MATCH_ID, ("jazz",))
        nursery.cancel_scope.cancel()
    state = rtt.estimate(BOB.peer_id.to_bytes(), trio.current_time())
    assert state is not None and state.samples == 2  # the dial, then the answer
    assert rtt.peers() == 1
    # the dial's sample was 0.1 a round trip; the answer came at once (fake streams)
    assert state.srtt == pytest.approx(0.875 * 0.1, abs=0.01)


def test_the_environment_pins_the_old_constants():
    assert node_rtt_estimator({}).adaptive
    assert not node_rtt_estimator({FIXED_TIMEOUTS_ENV: "1"}).adaptive


async def test_kademlia_exchanges_feed_the_estimate(autojump_clock):
    """One round trip on a reused stream, a connection and a request on a new one."""
    delay = 0.05

    async def server(stream: FakeStream) -> None:
        while True:
            request = await read_uvarint_frame(stream, 1024)
            await trio.sleep(delay)  # the path's round trip
            await stream.write(uvarint(len(request)) + request)

    rtt = RttEstimator()
    async with trio.open_nursery() as nursery:
        client, other = FakeHost(ALICE.peer_id, nursery), FakeHost(BOB.peer_id, nursery)
        client.connect(other)
        other.set_stream_handler(KAD_PROTOCOL, server)
        client.dial_delay = SETUP_ROUND_TRIPS * delay  # not connected: a dial first
        pool = StreamPool(client, KAD_PROTOCOL, spawn=nursery.start_soon, rtt=rtt)
        assert await pool.request(BOB.peer_id, b"one", 1024) == b"one"
        first = rtt.estimate(BOB.peer_id.to_bytes(), trio.current_time())
        assert first is not None and first.srtt == pytest.approx(delay, rel=0.05)
        assert await pool.request(BOB.peer_id, b"two", 1024) == b"two"  # reused: 1 round trip
        assert pool.reused == 1
        state = rtt.estimate(BOB.peer_id.to_bytes(), trio.current_time())
        assert state is not None and state.samples == 2
        assert state.srtt == pytest.approx(delay, rel=0.05)
        nursery.cancel_scope.cancel()


# -- bootstrap dials ---------------------------------------------------------------------------


class _SlowSeedHost:
    """A host whose connections take ``delay`` seconds to come up."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.connected: list = []

    async def connect(self, info: PeerInfo) -> None:
        await trio.sleep(self.delay)
        self.connected.append(info.peer_id)


def _dht(host: _SlowSeedHost, rtt: RttEstimator):
    return SimpleNamespace(host=host, local_peer_id=ALICE.peer_id, rtt=rtt)


async def _connect_seeds(dht, **kwargs) -> tuple[int, float]:
    started = trio.current_time()
    reached = await StrangersDHT.connect_seeds(dht, [PeerInfo(SEED.peer_id, [])], **kwargs)
    return reached, trio.current_time() - started


async def test_a_seed_three_seconds_away_is_reached_by_the_second_attempt_and_measured(autojump_clock):
    rtt = RttEstimator()
    host = _SlowSeedHost(CONNECT_ROUND_TRIPS * 3.0)  # 3 s round trips: 6 s to connect
    reached, took = await _connect_seeds(_dht(host, rtt))
    assert (reached, took) == (0, pytest.approx(backoff(BOOTSTRAP_DIAL, 0)))  # the old 5 s
    reached, took = await _connect_seeds(_dht(host, rtt), attempt=1)  # 10 s
    assert reached == 1 and took == pytest.approx(6.0)
    state = rtt.estimate(SEED.peer_id.to_bytes(), trio.current_time())
    assert state is not None and state.srtt == pytest.approx(3.0)


async def test_a_known_slow_seed_gets_its_time_at_the_first_attempt(autojump_clock):
    rtt = RttEstimator()
    rtt.observe(SEED.peer_id.to_bytes(), 1.0, trio.current_time())  # e.g. from an earlier dial
    reached, took = await _connect_seeds(_dht(_SlowSeedHost(6.0), rtt))
    assert reached == 1 and took == pytest.approx(6.0)
