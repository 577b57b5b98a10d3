"""The calibrated network model of the simulation (``bench/netmodel.py``), and that it
uses the node's own numbers: round trips, timeouts, idle streams."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from strangers.discovery import rtt
from strangers.node import chat, conversation, matching
from strangers.node.libp2p import kadpool

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import netmodel  # noqa: E402  (bench/ is not a package)
from netmodel import Connections, Endpoint, InternetModel  # noqa: E402

LOSSLESS = InternetModel(loss=0.0)
BEFORE = InternetModel(loss=0.0, round_trips=netmodel.BEFORE_ISSUE13)
"""The mechanics below are pinned with the round trips from before issue 13 (larger counts
tell the phases apart); the shipped counts are checked against the node's above."""
KAD_CONNECTED = replace(rtt.RPC_CONNECTED, floor=2.0)
KAD_DIAL = replace(rtt.RPC_DIAL, floor=2.0)


def test_todays_round_trips_are_the_nodes() -> None:
    trips = netmodel.TODAY
    assert trips.connect == rtt.CONNECT_ROUND_TRIPS
    assert trips.stream == rtt.STREAM_OPEN_ROUND_TRIPS
    assert trips.request == rtt.REQUEST_ROUND_TRIPS
    assert trips.connect + trips.stream == rtt.SETUP_ROUND_TRIPS  # the issue's ~8 to a fresh stream
    # after the lookup: dial 2 + answer 1 + chat stream 0 + chat handshake 1 (measured: 4)
    assert trips.after_lookup() == 4
    assert trips.after_lookup() <= 5  # issue 13's goal
    # before issue 13: dial 6 + stream 2 + answer 1 + chat stream 2 + chat handshake 2
    assert netmodel.BEFORE_ISSUE13.after_lookup() == 13
    # the deadlines the node derives from these counts are its own
    assert trips.dial_bounds(relayed=False) == rtt.DIAL
    assert trips.dial_bounds(relayed=True) == rtt.RELAYED_DIAL
    assert trips.relayed_setup == rtt.RELAYED_SETUP_ROUND_TRIPS
    assert trips.rpc_bounds(rtt.RPC_CONNECTED, connected=True) == rtt.RPC_CONNECTED
    assert trips.rpc_bounds(rtt.RPC_DIAL, connected=False) == rtt.RPC_DIAL
    # before issue 13 the node waited for the round trips it then took (a dial counted 8)
    before = netmodel.BEFORE_ISSUE13
    assert before.dial_bounds(relayed=False).round_trips == 8
    assert before.rpc_bounds(rtt.RPC_DIAL, connected=False).round_trips == 9


def test_the_models_timers_are_the_nodes() -> None:
    assert netmodel.KAD_IDLE_SECONDS == kadpool.IDLE_SECONDS
    assert netmodel.CHAT_TIMEOUT == chat.HANDSHAKE_TIMEOUT == matching.CHAT_OPEN_TIMEOUT
    assert "CHAT_OPEN_TIMEOUT" in Path(conversation.__file__).read_text()


def _pair(distance: float = 0.05) -> tuple[Endpoint, Endpoint]:
    return Endpoint(distance), Endpoint(distance)


def test_a_request_costs_by_connection_state() -> None:
    rng = random.Random(1)
    me, peer = _pair()  # a 100 ms path
    conns = Connections()
    first = netmodel.request(rng, BEFORE, conns, me, peer, 7, 0.0, KAD_CONNECTED, KAD_DIAL)
    assert first.ok and first.round_trips == 9
    assert first.seconds == pytest.approx(0.9)
    reused = netmodel.request(rng, BEFORE, conns, me, peer, 7, 1.0, KAD_CONNECTED, KAD_DIAL)
    assert reused.ok and reused.seconds == pytest.approx(0.1)  # the idle stream is reused
    later = 1.1 + netmodel.KAD_IDLE_SECONDS + 1
    stale = netmodel.request(rng, BEFORE, conns, me, peer, 7, later, KAD_CONNECTED, KAD_DIAL)
    assert stale.round_trips == 3 and stale.seconds == pytest.approx(0.3)  # a new stream


def test_a_dead_peer_costs_the_nodes_deadline() -> None:
    rng = random.Random(2)
    me, peer = _pair()
    peer.alive = False
    outcome = netmodel.request(rng, LOSSLESS, Connections(), me, peer, 1, 0.0, KAD_CONNECTED,
                               KAD_DIAL)
    assert not outcome.ok and outcome.seconds == KAD_DIAL.floor  # no sample yet: the floor


def test_the_deadline_follows_the_estimate_and_cuts_slow_dials() -> None:
    rng = random.Random(3)
    me = Endpoint(0.15)
    conns = Connections()
    far = Endpoint(0.15)  # a 300 ms path: a fresh stream takes 2.4 s
    # with the loopback-era floor (no sample yet) the proposal's 1 s dial fails...
    first = netmodel.propose(rng, BEFORE, conns, me, far, 1, 0.0)
    assert not first.ok and first.timeout == rtt.DIAL.floor
    # ...once a round trip is known (the bootstrap connection), it fits
    seed = Endpoint(0.15)
    assert netmodel.connect(rng, BEFORE, conns, me, seed, 2, 0.0, 5.0).ok
    second = netmodel.propose(rng, BEFORE, conns, me, far, 1, 2.0)
    assert second.ok and second.timeout > 2.4
    assert second.seconds == pytest.approx(0.3 * 9)


def test_losses_wait_for_tcps_timers() -> None:
    class Always(random.Random):
        def __init__(self, losses: int) -> None:
            super().__init__(0)
            self.losses = losses

        def random(self) -> float:
            self.losses -= 1
            return 0.0 if self.losses >= 0 else 0.99

    model = InternetModel(loss=0.5)
    # a lost SYN: 1 s, then the handshake's round trip
    assert netmodel.exchange_seconds(Always(1), model, 0.1, 1, new_tcp=True) == pytest.approx(1.1)
    # a lost segment on an open connection: RTT + 200 ms
    assert netmodel.exchange_seconds(Always(1), model, 0.1, 1, new_tcp=False) == pytest.approx(0.4)
    # twice lost: the timer doubles
    assert netmodel.exchange_seconds(Always(2), model, 0.1, 1, new_tcp=True) == pytest.approx(3.1)


def test_an_unreachable_stranger_is_dialled_through_its_relay() -> None:
    rng = random.Random(4)
    me = Endpoint(0.05)
    relay = Endpoint(0.05)
    stranger = Endpoint(0.05, reachable=False, relay=relay)
    direct = netmodel.dial_cost(BEFORE, me, Endpoint(0.05), rng)
    relayed = netmodel.dial_cost(BEFORE, me, stranger, rng)
    assert relayed[2] == pytest.approx(0.2)  # the circuit's round trip: two paths
    # connection and stream to the relay, HOP/STOP, then a connection's worth over the circuit
    assert relayed[0] == pytest.approx(8 * 0.1 + 0.1 + 0.1 + 8 * 0.2)
    assert relayed[0] > 2 * direct[0]
    # a connection to the relay that is open already saves its set-up
    conns = Connections()
    conns.connect(9)
    stranger.relay_id = 9
    reused = netmodel.dial_cost(BEFORE, me, stranger, rng, conns)
    assert reused[0] == pytest.approx(2 * 0.1 + 0.1 + 0.1 + 8 * 0.2)


def test_the_latency_model_is_heavy_tailed_around_100_ms() -> None:
    quantiles = netmodel.Latency().pair_quantiles(random.Random(5), samples=5000)
    assert 0.08 < quantiles["median"] < 0.12
    assert quantiles["p90"] > 2 * quantiles["median"]  # a long right tail
    assert quantiles["p99"] > 3.5 * quantiles["median"]
    assert quantiles["p99"] < 0.5  # >99% of pairs under 500 ms (Valadao et al.)


def test_open_chat_costs_a_stream_and_the_handshake() -> None:
    me, peer = _pair()
    outcome = netmodel.open_chat(random.Random(6), BEFORE, Connections(), me, peer, 1)
    assert outcome.ok and outcome.round_trips == 4 and outcome.seconds == pytest.approx(0.4)


def test_the_kademlia_deadlines_are_derived_as_kad_py_derives_them() -> None:
    import inspect

    from strangers.node.libp2p.kad import StrangersDHT

    source = inspect.getsource(StrangersDHT.__init__)
    assert "replace(RPC_CONNECTED, floor=rpc_timeout" in source
    assert "ceiling=max(rpc_timeout, RPC_CONNECTED.ceiling)" in source
    assert "replace(RPC_DIAL, floor=rpc_timeout, ceiling=max(rpc_timeout, RPC_DIAL.ceiling))" in source
    floor = inspect.signature(StrangersDHT.__init__).parameters["rpc_timeout"].default
    assert netmodel.RPC_CONNECTED == replace(rtt.RPC_CONNECTED, floor=floor,
                                             ceiling=max(floor, rtt.RPC_CONNECTED.ceiling))
    assert netmodel.RPC_DIAL.round_trips == rtt.SETUP_ROUND_TRIPS + rtt.REQUEST_ROUND_TRIPS


def test_a_relayed_proposal_gets_the_nodes_relayed_dial_deadline() -> None:
    rng = random.Random(5)
    me = Endpoint(0.05)
    relay = Endpoint(0.05)
    stranger = Endpoint(0.05, reachable=False, relay=relay)
    # today's relayed dial is the node's RELAYED_SETUP_ROUND_TRIPS of a direct path
    assert netmodel.TODAY.relay_control == rtt.RELAY_CONTROL_ROUND_TRIPS
    seconds, _, _ = netmodel.dial_cost(LOSSLESS, me, stranger, rng)
    assert seconds == pytest.approx(rtt.RELAYED_SETUP_ROUND_TRIPS * 0.1)
    # with no sample yet the node waits RELAYED_DIAL's floor, not DIAL's (node/matching.py)
    slow = Endpoint(0.06, reachable=False, relay=Endpoint(0.06))  # a 1.15 s relayed dial
    relayed = netmodel.propose(rng, LOSSLESS, Connections(), me, slow, 3, 0.0)
    assert relayed.timeout == rtt.RELAYED_DIAL.floor > rtt.DIAL.floor
    assert relayed.ok
    # a direct dial as slow (two round trips of 575 ms) is cut at DIAL's floor
    direct = netmodel.propose(rng, LOSSLESS, Connections(), me, Endpoint(0.525), 4, 0.0)
    assert direct.timeout == rtt.DIAL.floor and not direct.ok
