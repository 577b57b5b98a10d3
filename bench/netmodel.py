"""A calibrated model of what an exchange with a peer costs on the internet (stdlib only).

``bench/internet_sim.py`` drives the node's own pure modules (the lookup, the
search planner, the matcher) over this model; the unit tests import it
directly (``tests/unit/test_netmodel.py``). What it models, per exchange
between two nodes:

* **round trips by connection state** (:class:`RoundTrips`): a peer we are
  not connected to costs a whole connection and a stream (8 round trips with
  py-libp2p 0.8.1 as we drive it, measured through the delaying proxy, see
  ``docs/scale.md``), a new stream on an open connection 2, a request on an
  open stream 1. A stream left idle longer than the pool keeps it
  (``kadpool.IDLE_SECONDS``) costs a new stream again. Every count is a
  parameter, so the savings of issue 13 item 1 plug in (:data:`TODAY`; :data:`BEFORE_ISSUE13`: the counts before);
* **heavy-tailed per-node latency** (:class:`Latency`): each node sits
  ``d`` seconds from the core, ``d`` log-normal; a path's round trip is
  ``d_a + d_b``;
* **loss** with TCP's retransmission timers: each flight is lost with
  probability ``loss``; a lost SYN is resent after 1 s (RFC 6298 §2.1, and
  Linux), a later segment after ``max(200 ms, srtt + 4 rttvar)`` (Linux's
  minimum RTO), both doubling on each further loss;
* **unreachable nodes** behind NATs: a dial goes through the node's relay
  (circuit relay v2), which costs a connection to the relay (a stream if one
  is open), the HOP and STOP exchanges, then security, muxer and stream over
  the circuit at the relayed round trip;
* **dead peers**: a dial or request to a peer that left never answers;
* **the node's timeouts**: every exchange gets the deadline the node would
  give it, from :class:`strangers.discovery.rtt.RttEstimator` fed with the
  exchanges that succeeded (the same code, the same bounds). An exchange
  slower than its deadline fails at the deadline.

No numpy, no clock (the node's modules are imported for their constants):
randomness comes from the ``random.Random`` passed in.
"""

from __future__ import annotations

import inspect
import math
import random
from dataclasses import dataclass, field, replace

from strangers.discovery import rtt as rtt_policy
from strangers.discovery.rtt import Bounds, RttEstimator
from strangers.node.libp2p.kad import StrangersDHT

_KAD = inspect.signature(StrangersDHT.__init__).parameters
RPC_TIMEOUT_FLOOR = _KAD["rpc_timeout"].default
"""kad.py's floor for every request's deadline."""
RPC_CONNECTED = replace(rtt_policy.RPC_CONNECTED, floor=RPC_TIMEOUT_FLOOR,
                        ceiling=max(RPC_TIMEOUT_FLOOR, rtt_policy.RPC_CONNECTED.ceiling))
RPC_DIAL = replace(rtt_policy.RPC_DIAL, floor=RPC_TIMEOUT_FLOOR,
                   ceiling=max(RPC_TIMEOUT_FLOOR, rtt_policy.RPC_DIAL.ceiling))
"""The bounds of a Kademlia request as ``StrangersDHT.__init__`` derives them."""
ENOUGH_PROVIDERS = inspect.signature(StrangersDHT.lookup).parameters["enough_providers"].default

SYN_RTO = 1.0
"""Seconds before a lost SYN is sent again (RFC 6298 §2.1's initial RTO; Linux's TCP_TIMEOUT_INIT)."""
MIN_RTO = 0.2
"""Linux's smallest retransmission timeout for a segment of an established connection (TCP_RTO_MIN)."""
MAX_RETRANSMISSIONS = 6
"""After this many losses in a row the exchange is as good as failed (its deadline ends it)."""
KAD_IDLE_SECONDS = 30.0
"""An idle Kademlia stream older than this is not reused (``node/libp2p/kadpool.IDLE_SECONDS``)."""


@dataclass(frozen=True)
class RoundTrips:
    """Round trips per exchange, by what is open to the peer already."""

    connect: float = rtt_policy.CONNECT_ROUND_TRIPS
    """A new connection: TCP, then Noise with the security and muxer proposals riding in its
    flights (2 since issue 13's optimistic multistream-select; 6 before)."""
    stream: float = rtt_policy.STREAM_OPEN_ROUND_TRIPS
    """A new stream on an open connection (0 since the protocol proposal rides with the first
    request; 2 before: multistream-select's header, then the protocol)."""
    request: float = rtt_policy.REQUEST_ROUND_TRIPS
    """A request on an open stream, or the first request on a new one once it is open."""
    chat_handshake: float = 1.0
    """The chat handshake once the match is agreed (docs/protocol.md §6.2: the commit rides in
    Propose and hello_R in Accept, so only hello_I + finished_I -> finished_R is left; 2 before)."""
    relay_control: float = 2.0
    """A relayed dial's HOP CONNECT to the relay and the relay's STOP to the target."""

    @property
    def first_contact(self) -> float:
        """A request to a peer we are not connected to: connection, stream, request."""
        return self.connect + self.stream + self.request

    @property
    def setup(self) -> float:
        """A stream to a peer we are not connected to: connection and stream."""
        return self.connect + self.stream

    @property
    def relayed_setup(self) -> float:
        """The same through the peer's relay, in round trips of a direct path: a stream to
        the relay, HOP and STOP, then a connection and stream over the circuit (two paths)."""
        return self.setup + self.relay_control + 2 * self.setup

    def dial_bounds(self, relayed: bool) -> Bounds:
        """``rtt.dial_bounds`` as a node whose exchanges take these round trips sets it: the
        node's own for :data:`TODAY`; before issue 13 its ``DIAL`` counted 8 round trips."""
        return replace(rtt_policy.dial_bounds(relayed),
                       round_trips=self.relayed_setup if relayed else self.setup)

    def rpc_bounds(self, bounds: Bounds, connected: bool) -> Bounds:
        """A Kademlia request's bounds (``RPC_CONNECTED`` or ``RPC_DIAL``) with these round
        trips: a new stream and the request, or a connection first."""
        return replace(bounds, round_trips=(self.stream + self.request) if connected
                       else self.first_contact)

    def after_lookup(self) -> float:
        """Round trips from the proposal to the match, with a fresh connection to the stranger:
        dial + match stream + answer + chat stream + chat handshake."""
        return self.first_contact + self.stream + self.chat_handshake


TODAY = RoundTrips()
"""The node as it ships: py-libp2p 0.8.1 with our optimistic multistream-select and the chat
handshake inside the match exchange (docs/performance.md "Round trips per phase")."""
BEFORE_ISSUE13 = RoundTrips(connect=6.0, stream=2.0, request=1.0, chat_handshake=2.0)
"""Before issue 13 item 1 (the issue's measurement: ~8 to open a fresh stream, 2.1 for a new
stream on an open connection, 1.0 for a request on an open stream)."""


@dataclass(frozen=True)
class Latency:
    """Per-node distance to the core of the internet, log-normal; a path's RTT is the sum of two.

    The defaults put a pair's round trip at median ~100 ms, p90 ~215 ms, p99 ~410 ms (see
    :meth:`pair_quantiles`): a right-skewed, long-tailed distribution as measured between
    internet hosts (Acharya and Saltz, "A Study of Internet Round-Trip Delay", UMIACS-TR-96-97,
    1996: unimodal, asymmetric, long right tail; Valadao, Guedes and Duarte, "Caracterização de
    tempos de ida-e-volta na Internet", 2010, arXiv:1202.2153: 550 million RTTs between 81
    PlanetLab hosts, Gamma-shaped, over 99% of pairs averaging under 500 ms) with a median
    near the ~100 ms usually quoted for pairs of DNS servers (the King data set).
    """

    median: float = 0.044
    """Median one-node distance, seconds (half of a median path's round trip)."""
    sigma: float = 0.8
    """Log-normal shape: the spread of the tail."""
    floor: float = 0.002
    """Nobody is closer than this (a LAN hop)."""

    def draw(self, rng: random.Random) -> float:
        return max(self.floor, rng.lognormvariate(math.log(self.median), self.sigma))

    def pair_quantiles(self, rng: random.Random, samples: int = 20_000) -> dict[str, float]:
        """Median, p90 and p99 of a path's round trip (two nodes drawn independently)."""
        values = sorted(self.draw(rng) + self.draw(rng) for _ in range(samples))
        return {name: values[int(q * (samples - 1))]
                for name, q in (("median", 0.5), ("p90", 0.9), ("p99", 0.99))}


@dataclass(frozen=True)
class InternetModel:
    """Everything about the network that is not the protocol."""

    round_trips: RoundTrips = TODAY
    latency: Latency = Latency()
    loss: float = 0.01
    """Probability that one flight (a segment and its answer each count once) is lost."""
    unreachable: float = 0.3
    """Share of users behind a NAT that needs a relay (DHT servers are all reachable)."""
    dead: float = 0.1
    """Share of routing-table entries whose node has left (session churn)."""
    mean_wait: float = 120.0
    """Seconds a waiting stranger waits on average before giving up (exponential)."""

    def with_round_trips(self, round_trips: RoundTrips) -> InternetModel:
        return replace(self, round_trips=round_trips)


@dataclass
class Endpoint:
    """One node as the model sees it."""

    distance: float
    """Seconds to the core (half of a round trip to a node at distance zero... plus its own)."""
    reachable: bool = True
    alive: bool = True
    relay: Endpoint | None = None
    """Where an unreachable node keeps its reservation."""
    relay_id: int | None = None
    """The relay's peer (a connection to it may be open already)."""


def path_rtt(a: Endpoint, b: Endpoint) -> float:
    return a.distance + b.distance


@dataclass(frozen=True)
class Outcome:
    """How one exchange went."""

    ok: bool
    seconds: float
    """Until the answer, or until the deadline when it failed."""
    round_trips: float
    """Round trips of the exchange (without retransmission waits)."""
    timeout: float
    """The deadline the node gave it."""


@dataclass
class _Peer:
    connected: bool = False
    stream_idle_since: float | None = None
    """When the last request on a reusable stream ended (None: no such stream)."""


@dataclass
class Connections:
    """What one node has open to others, and its round-trip estimator (the node's own code)."""

    estimator: RttEstimator = field(default_factory=RttEstimator)
    peers: dict[int, _Peer] = field(default_factory=dict)

    def connected(self, peer: int) -> bool:
        state = self.peers.get(peer)
        return state is not None and state.connected

    def connect(self, peer: int) -> None:
        self.peers.setdefault(peer, _Peer()).connected = True

    def warm_stream(self, peer: int, now: float) -> bool:
        state = self.peers.get(peer)
        return (state is not None and state.connected and state.stream_idle_since is not None
                and now - state.stream_idle_since <= KAD_IDLE_SECONDS)


def retransmission_delay(rng: random.Random, loss: float, rto: float) -> float:
    """Extra seconds one flight waits on losses: ``rto``, doubled on each further loss."""
    delay = 0.0
    for _ in range(MAX_RETRANSMISSIONS):
        if rng.random() >= loss:
            return delay
        delay += rto
        rto *= 2
    return math.inf


def exchange_seconds(rng: random.Random, model: InternetModel, rtt: float, round_trips: float,
                     *, new_tcp: bool) -> float:
    """Seconds ``round_trips`` round trips take on a path of ``rtt``, losses included;
    ``new_tcp``: the first one is TCP's handshake (a lost SYN waits :data:`SYN_RTO`)."""
    seconds = rtt * round_trips
    whole = math.ceil(round_trips)
    segment_rto = max(MIN_RTO, rtt + MIN_RTO)  # Linux: srtt + max(200 ms, 4 rttvar), settled
    for index in range(whole):
        rto = SYN_RTO if new_tcp and index == 0 else segment_rto
        seconds += retransmission_delay(rng, model.loss, rto)
    return seconds


def dial_cost(model: InternetModel, origin: Endpoint, target: Endpoint,
              rng: random.Random, conns: Connections | None = None) -> tuple[float, float, float]:
    """(seconds, round trips, path RTT afterwards) of a new connection and stream to ``target``.

    Direct when ``target`` is reachable; else through its relay: a stream to
    the relay (and a connection first, unless ``conns`` has one open), the
    HOP/STOP exchanges, then security, muxer and stream over the circuit (no
    TCP handshake) at the relayed round trip.
    """
    trips = model.round_trips
    setup = trips.connect + trips.stream
    if target.reachable or target.relay is None:
        rtt = path_rtt(origin, target)
        return exchange_seconds(rng, model, rtt, setup, new_tcp=True), setup, rtt
    relay = target.relay
    to_relay = path_rtt(origin, relay)
    relayed = to_relay + path_rtt(relay, target)
    if conns is not None and target.relay_id is not None and conns.connected(target.relay_id):
        seconds = exchange_seconds(rng, model, to_relay, trips.stream + trips.relay_control / 2,
                                   new_tcp=False)
    else:
        seconds = exchange_seconds(rng, model, to_relay, setup + trips.relay_control / 2,
                                   new_tcp=True)
    seconds += exchange_seconds(rng, model, path_rtt(relay, target), trips.relay_control / 2,
                                new_tcp=False)
    # security, muxer and stream over the circuit: as many round trips as a direct
    # connection and stream (measured: the circuit's set-up takes the place of TCP's
    # handshake but costs one more round trip, see docs/scale.md (e), calibration)
    seconds += exchange_seconds(rng, model, relayed, setup, new_tcp=False)
    return seconds, setup, relayed


def request(rng: random.Random, model: InternetModel, conns: Connections, origin: Endpoint,
            target: Endpoint, target_id: int, now: float, bounds_connected: Bounds,
            bounds_dial: Bounds, *, reuse_stream: bool = True) -> Outcome:
    """One request-and-answer from ``origin`` to ``target``, as the node runs it.

    Connection state decides the round trips; the deadline is the node's
    (``RttEstimator.timeout`` with ``bounds_connected`` or ``bounds_dial``);
    a success feeds the estimator as the node does and leaves the connection
    (and, with ``reuse_stream``, an idle stream) open.
    """
    trips = model.round_trips
    connected = conns.connected(target_id)
    bounds = trips.rpc_bounds(bounds_connected if connected else bounds_dial, connected)
    timeout = conns.estimator.timeout(peer_key(target_id), now, bounds)
    if not target.alive:
        return Outcome(False, timeout, 0.0, timeout)
    if connected:
        rtt = _connected_rtt(origin, target)
        count = trips.request + (0 if reuse_stream and conns.warm_stream(target_id, now)
                                 else trips.stream)
        seconds = exchange_seconds(rng, model, rtt, count, new_tcp=False)
    else:
        seconds, _, rtt = dial_cost(model, origin, target, rng, conns)
        seconds += exchange_seconds(rng, model, rtt, trips.request, new_tcp=False)
        count = trips.first_contact
    if seconds > timeout:
        return Outcome(False, timeout, count, timeout)
    done = now + seconds
    conns.connect(target_id)
    if reuse_stream:
        conns.peers[target_id].stream_idle_since = done
    # the node divides by the round trips it believes the exchange took (a relayed
    # dial is slower per round trip: its samples raise the estimate, as they would)
    conns.estimator.observe(peer_key(target_id), seconds, done, round_trips=count)
    return Outcome(True, seconds, count, timeout)


def peer_key(peer: int) -> bytes:
    return peer.to_bytes(8, "big")


def connect(rng: random.Random, model: InternetModel, conns: Connections, origin: Endpoint,
            target: Endpoint, target_id: int, now: float, timeout: float) -> Outcome:
    """A bare connection (the bootstrap dial: ``connect_seeds``, fixed ``timeout``)."""
    count = model.round_trips.connect
    if not target.alive:
        return Outcome(False, timeout, 0.0, timeout)
    seconds = exchange_seconds(rng, model, path_rtt(origin, target), count, new_tcp=True)
    if seconds > timeout:
        return Outcome(False, timeout, count, timeout)
    conns.connect(target_id)
    conns.estimator.observe(peer_key(target_id), seconds, now + seconds, round_trips=count)
    return Outcome(True, seconds, count, timeout)


def propose(rng: random.Random, model: InternetModel, conns: Connections, origin: Endpoint,
            target: Endpoint, target_id: int, now: float) -> Outcome:
    """A proposal as ``node/matching.py`` sends it: open the match stream (dial included)
    within the deadline of ``rtt.dial_bounds`` (``DIAL``, or ``RELAYED_DIAL`` to a
    stranger that announces only its relay), then write and read the answer within
    ``ANSWER``'s."""
    trips = model.round_trips
    key = peer_key(target_id)
    connected = conns.connected(target_id)
    relayed = not connected and not target.reachable
    dial = trips.dial_bounds(relayed)
    dial_timeout = conns.estimator.timeout(key, now, dial)
    if not target.alive:
        return Outcome(False, dial_timeout, 0.0, dial_timeout)
    if connected:
        rtt = _connected_rtt(origin, target)
        opened = exchange_seconds(rng, model, rtt, trips.stream, new_tcp=False)
        open_trips = trips.stream
    else:
        opened, _, rtt = dial_cost(model, origin, target, rng, conns)
        open_trips = trips.connect + trips.stream
    if opened > dial_timeout:
        return Outcome(False, dial_timeout, open_trips, dial_timeout)
    conns.connect(target_id)
    # the node divides a relayed dial by the round trips of its bounds, as it cannot count them
    conns.estimator.observe(key, opened, now + opened,
                            round_trips=dial.round_trips if relayed else open_trips)
    answer_timeout = conns.estimator.timeout(key, now + opened, rtt_policy.ANSWER)
    answered = exchange_seconds(rng, model, rtt, trips.request, new_tcp=False)
    total_trips = open_trips + trips.request
    if answered > answer_timeout:
        return Outcome(False, opened + answer_timeout, total_trips, dial_timeout)
    conns.estimator.observe(key, answered, now + opened + answered, round_trips=trips.request)
    return Outcome(True, opened + answered, total_trips, dial_timeout)


CHAT_TIMEOUT = 5.0
"""The chat's fixed ``CHAT_OPEN_TIMEOUT`` and ``HANDSHAKE_TIMEOUT`` (node/chat.py)."""


def open_chat(rng: random.Random, model: InternetModel, conns: Connections, origin: Endpoint,
              target: Endpoint, target_id: int) -> Outcome:
    """The chat stream on the proposal's connection, then the chat handshake."""
    trips = model.round_trips
    rtt = _connected_rtt(origin, target)
    opened = exchange_seconds(rng, model, rtt, trips.stream, new_tcp=False)
    if opened > CHAT_TIMEOUT:
        return Outcome(False, CHAT_TIMEOUT, trips.stream, CHAT_TIMEOUT)
    shaken = exchange_seconds(rng, model, rtt, trips.chat_handshake, new_tcp=False)
    count = trips.stream + trips.chat_handshake
    if shaken > CHAT_TIMEOUT:
        return Outcome(False, opened + CHAT_TIMEOUT, count, CHAT_TIMEOUT)
    return Outcome(True, opened + shaken, count, CHAT_TIMEOUT)


def _connected_rtt(origin: Endpoint, target: Endpoint) -> float:
    if not target.reachable and target.relay is not None:
        return path_rtt(origin, target.relay) + path_rtt(target.relay, target)
    return path_rtt(origin, target)
