"""Round-trip time estimation and the timeouts derived from it (pure: no clock).

The proposal dial (1 s) and Kademlia RPC (2 s) timeouts were first chosen on
loopback. On a 300 ms path a fresh connection of py-libp2p as it comes took
about 8 round trips (TCP, multistream-select for security, Noise XX,
multistream-select for the muxer, yamux, multistream-select for the
protocol), ~2.4 s: every dial failed (with optimistic negotiation,
:data:`SETUP_ROUND_TRIPS`, 0.6 s). So timeouts are derived from measured
round trips, as TCP derives its retransmission timeout (RFC 6298):

* each sample ``R`` updates ``RTTVAR = (1 - BETA) * RTTVAR + BETA * |SRTT - R|``
  then ``SRTT = (1 - ALPHA) * SRTT + ALPHA * R`` (the first sets ``SRTT = R``,
  ``RTTVAR = R / 2``), and ``RTO = SRTT + max(G, K * RTTVAR)``;
* an exchange of ``n`` round trips gets ``MARGIN * n * RTO``, clamped between a floor
  (the loopback-era constant: never shorter than before) and a ceiling;
* estimates are kept per peer (bounded, least recently used first out) and for
  the whole node; a peer without a fresh estimate of its own gets the node's.

The adapters feed samples with :meth:`RttEstimator.observe`: an elapsed time
and how many round trips it stood for (a request on an open stream or a new
one is one, a whole new connection :data:`CONNECT_ROUND_TRIPS`).
Time is always passed in (``now``), so the same code runs under a mock clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

ALPHA = 1 / 8
"""RFC 6298's gain for SRTT."""
BETA = 1 / 4
"""RFC 6298's gain for RTTVAR."""
K = 4
"""RFC 6298's variance multiplier."""
GRANULARITY = 0.01
"""G: the smallest variance term, in seconds (a timer's resolution)."""

CONNECT_ROUND_TRIPS = 2
"""Round trips until a fresh connection is usable (``host.connect`` returns): TCP's
handshake (1), then Noise XX's first exchange (1), the security protocol's
proposal riding with Noise's first message. Noise's last message, the muxer
proposal and the first stream ride with the first request
(``node/libp2p/multistream.py``; py-libp2p's own negotiation took 6)."""
STREAM_OPEN_ROUND_TRIPS = 0
"""A new stream on an open connection: none, its protocol proposal rides with
the request and the echo with the answer (py-libp2p's own negotiation took 2)."""
SETUP_ROUND_TRIPS = CONNECT_ROUND_TRIPS + STREAM_OPEN_ROUND_TRIPS
"""A stream to a peer we are not connected to: a connection, then a stream (2)."""
REQUEST_ROUND_TRIPS = 1
"""A request on a stream that is already open."""
NEW_STREAM_ROUND_TRIPS = STREAM_OPEN_ROUND_TRIPS + REQUEST_ROUND_TRIPS
"""A request on a new stream of an open connection (1)."""
RELAY_CONTROL_ROUND_TRIPS = 2
"""Circuit relay v2's own exchange on a relayed dial: HOP CONNECT to the relay, which
sends STOP CONNECT to the target and answers once the target has (one round trip on
each of the two paths)."""
RELAYED_SETUP_ROUND_TRIPS = (SETUP_ROUND_TRIPS + RELAY_CONTROL_ROUND_TRIPS
                             + 2 * SETUP_ROUND_TRIPS)
"""A stream to a peer reachable only through a relay, counted in round trips of a
direct path (8): a connection and stream to the relay, its HOP and STOP exchange, then a
connection and stream over the circuit, whose every round trip crosses two paths."""

MARGIN = 2
"""An exchange of ``n`` round trips may take twice ``n`` RTOs: room for a lost
segment (Linux retransmits after at least 200 ms, a SYN after 1 s) and for a
busy peer. On a settled 300 ms path a dial gets ~5 s for its ~2.4 s."""

MAX_PEERS = 1024
"""Per-peer estimates kept; the least recently updated one goes first."""
PEER_STALE_SECONDS = 600.0
"""A peer's estimate older than this is not trusted: the node's is used instead."""
MAX_SAMPLE = 60.0
"""A sample above this is a stall or a bug of the caller, not a round trip: ignored."""


@dataclass(frozen=True)
class Bounds:
    """How many round trips an exchange takes, and its floor and ceiling in seconds."""

    round_trips: float
    floor: float
    ceiling: float

    def __post_init__(self) -> None:
        if not (self.round_trips > 0 and 0 < self.floor <= self.ceiling):
            raise ValueError(f"bad timeout bounds: {self!r}")


DIAL = Bounds(SETUP_ROUND_TRIPS, floor=1.0, ceiling=10.0)
"""Opening the match stream to a candidate, dial included (``node/matching.py``)."""
RELAYED_DIAL = Bounds(RELAYED_SETUP_ROUND_TRIPS, floor=2.0, ceiling=20.0)
"""The same to a candidate that announces a relayed address (``/p2p-circuit``): with
:data:`DIAL`'s two round trips, a relayed dial ran out of time once in four
(``bench/internet_sim.py``, 30 % of strangers behind NATs; ``docs/scale.md`` (e))."""
ANSWER = Bounds(2, floor=3.0, ceiling=10.0)
"""Writing a proposal and reading its answer (one round trip, doubled for the peer's work)."""
RPC_CONNECTED = Bounds(NEW_STREAM_ROUND_TRIPS, floor=2.0, ceiling=10.0)
"""A Kademlia request to a connected peer (on a new or a reused stream)."""
RPC_DIAL = Bounds(SETUP_ROUND_TRIPS + REQUEST_ROUND_TRIPS, floor=2.0, ceiling=12.0)
"""A Kademlia request to a peer we must dial first."""
CHAT_HANDSHAKE = Bounds(2, floor=5.0, ceiling=20.0)
"""A chat's handshake, from its stream to ``Established`` (commit -> hello_R,
then hello_I/finished_I -> finished_R: two round trips, ``docs/protocol.md`` §6.2)."""
BOOTSTRAP_DIAL = Bounds(CONNECT_ROUND_TRIPS, floor=5.0, ceiling=30.0)
"""Connecting to a bootstrap peer. At start-up there is no sample yet: the
first attempt gets the floor, and each attempt after one in which no seed
answered gets twice the one before (:func:`backoff`), as TCP doubles its
retransmission timeout while it has no measurement (RFC 6298 §5.5)."""

MAX_PENDING_PROBES = 64
"""Probes (pings, texts awaiting their receipt) a :class:`RoundTripTimer` keeps."""


def backoff(bounds: Bounds, attempt: int) -> float:
    """The floor of ``bounds`` doubled ``attempt`` times (0: the floor), up to its ceiling."""
    if attempt < 0:
        raise ValueError(f"bad attempt: {attempt!r}")
    return min(bounds.ceiling, bounds.floor * float(2 ** min(attempt, 32)))


def is_relayed(addrs: Iterable[str]) -> bool:
    """Whether a peer's addresses include a relayed one (circuit relay v2)."""
    return any("/p2p-circuit" in addr for addr in addrs)


def dial_bounds(relayed: bool) -> Bounds:
    """The bounds of opening a stream to a candidate (dial included): :data:`DIAL`, or
    :data:`RELAYED_DIAL` if it announces a relayed address (:func:`is_relayed`)."""
    return RELAYED_DIAL if relayed else DIAL


def bootstrap_dial_timeout(estimator: RttEstimator, peer: bytes | None, now: float,
                           attempt: int = 0) -> float:
    """Seconds a dial to a bootstrap peer may take (``StrangersDHT.connect_seeds``).

    What the peer's round trips call for (:data:`BOOTSTRAP_DIAL`), and at least
    the floor doubled ``attempt`` times: 5 s with no sample at start-up, then
    10, 20, 30 while no seed answers (:func:`backoff`).
    """
    return max(backoff(BOOTSTRAP_DIAL, attempt), estimator.timeout(peer, now, BOOTSTRAP_DIAL))


class RoundTripTimer:
    """When each probe was sent, to time its answer: a ping and its pong, a chat
    text and its delivery receipt. Bounded: the oldest probe is forgotten first."""

    def __init__(self, max_pending: int = MAX_PENDING_PROBES) -> None:
        if max_pending < 1:
            raise ValueError(f"bad max_pending: {max_pending!r}")
        self._max = max_pending
        self._sent: OrderedDict[object, float] = OrderedDict()

    def sent(self, probe: object, now: float) -> None:
        """``probe`` (any hashable key, e.g. ``("ping", 3)``) left at ``now``."""
        self._sent.pop(probe, None)
        self._sent[probe] = now
        while len(self._sent) > self._max:
            self._sent.popitem(last=False)

    def answered(self, probe: object, now: float) -> float | None:
        """Seconds since ``probe`` left, or None (unknown, answered already, or forgotten)."""
        started = self._sent.pop(probe, None)
        if started is None or now < started:
            return None
        return now - started

    def __len__(self) -> int:
        return len(self._sent)


@dataclass
class RttState:
    """One SRTT/RTTVAR pair (RFC 6298 §2)."""

    srtt: float
    rttvar: float
    updated: float
    samples: int = 1

    @classmethod
    def first(cls, sample: float, now: float) -> RttState:
        return cls(srtt=sample, rttvar=sample / 2, updated=now)

    def update(self, sample: float, now: float) -> None:
        self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - sample)
        self.srtt = (1 - ALPHA) * self.srtt + ALPHA * sample
        self.updated = now
        self.samples += 1

    @property
    def rto(self) -> float:
        return self.srtt + max(GRANULARITY, K * self.rttvar)


class RttEstimator:
    """SRTT/RTTVAR per peer and for the whole node; timeouts derived from them.

    ``adaptive=False`` pins every timeout to its floor (the fixed loopback-era
    constants), for comparison.
    """

    def __init__(self, *, adaptive: bool = True, max_peers: int = MAX_PEERS,
                 stale_after: float = PEER_STALE_SECONDS) -> None:
        if max_peers < 1 or stale_after <= 0:
            raise ValueError(f"bad estimator settings: max_peers={max_peers!r}, "
                             f"stale_after={stale_after!r}")
        self.adaptive = adaptive
        self._max_peers = max_peers
        self._stale_after = stale_after
        self._peers: OrderedDict[bytes, RttState] = OrderedDict()
        self.node: RttState | None = None
        """The estimate over every peer's samples."""

    def observe(self, peer: bytes | None, elapsed: float, now: float, *,
                round_trips: float = REQUEST_ROUND_TRIPS) -> None:
        """``elapsed`` seconds were spent on ``round_trips`` round trips with ``peer``.

        ``peer`` None: a sample for the node's estimate only. Nonsense
        (negative, or above :data:`MAX_SAMPLE`) is ignored.
        """
        if round_trips <= 0 or not 0 <= elapsed <= MAX_SAMPLE:
            return
        sample = elapsed / round_trips
        if self.node is None:
            self.node = RttState.first(sample, now)
        else:
            self.node.update(sample, now)
        if peer is None:
            return
        state = self._peers.pop(peer, None)
        if state is None or now - state.updated > self._stale_after:
            state = RttState.first(sample, now)
        else:
            state.update(sample, now)
        self._peers[peer] = state
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)

    def estimate(self, peer: bytes | None, now: float) -> RttState | None:
        """``peer``'s fresh estimate, else the node's, else None (no sample yet)."""
        if peer is not None:
            state = self._peers.get(peer)
            if state is not None and now - state.updated <= self._stale_after:
                return state
        return self.node

    def rto(self, peer: bytes | None, now: float) -> float | None:
        """RFC 6298's retransmission timeout for one round trip with ``peer`` (None: no sample)."""
        state = self.estimate(peer, now)
        return None if state is None else state.rto

    def timeout(self, peer: bytes | None, now: float, bounds: Bounds) -> float:
        """:data:`MARGIN` times ``bounds.round_trips`` RTOs, within the bounds; the floor
        with no sample (or not adaptive)."""
        rto = self.rto(peer, now) if self.adaptive else None
        if rto is None:
            return bounds.floor
        return min(bounds.ceiling, max(bounds.floor, MARGIN * bounds.round_trips * rto))

    def peers(self) -> int:
        """How many per-peer estimates are kept (fresh or not)."""
        return len(self._peers)
