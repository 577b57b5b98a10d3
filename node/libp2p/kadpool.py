"""Kademlia request streams kept open and reused, per peer.

Opening a stream in py-libp2p 0.8.1 (a yamux stream plus multistream-select)
costs about 2 ms of CPU on each side, two thirds of a whole GET_PROVIDERS
round trip on loopback (3.1 ms with a new stream, 0.8 ms on an open one; see
``docs/performance.md``). The Kademlia spec lets a client send several
requests one after the other on one stream, and py-libp2p's and go-libp2p's
servers read requests in a loop. So a request takes an idle stream to its
peer if there is one, and gives it back after a complete reply.

A stream is only given back in a known state: after the whole reply was read.
A request that fails, times out or is cancelled (a walk that ended early)
resets its stream. A reused stream that turns out to be closed by the peer
(idle too long, its connection gone) is retried once on a new stream.

Every complete exchange is a round-trip sample for the node's
:class:`~strangers.discovery.rtt.RttEstimator`: one round trip on a reused
stream, three on a new stream, a whole connection set-up and one more when the
request had to dial.

Bounded: :data:`IDLE_PER_PEER` idle streams per peer and :data:`IDLE_TOTAL` in
all, each kept at most :data:`IDLE_SECONDS`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import trio
from libp2p.network.stream.exceptions import StreamError

from strangers.discovery.rtt import (
    NEW_STREAM_ROUND_TRIPS,
    REQUEST_ROUND_TRIPS,
    SETUP_ROUND_TRIPS,
    RttEstimator,
)

from .streamio import (
    StreamEnded,
    forget_closed_connections,
    read_uvarint_frame,
    reset_quietly,
    uvarint,
)

logger = logging.getLogger(__name__)

IDLE_PER_PEER = 4
"""Idle streams kept per peer (a few walks ask the same peer at once)."""
IDLE_TOTAL = 256
IDLE_SECONDS = 30.0
"""An idle stream older than this is closed instead of reused (servers end idle
streams after a while: ours after ``SERVER_STREAM_SECONDS``, go's after a minute)."""


class StreamPool:
    """Request/reply exchanges over reused streams of one protocol."""

    def __init__(self, host, protocol: str, spawn, rtt: RttEstimator | None = None) -> None:
        """``spawn(async_fn, *args)`` runs a task owned by the pool's owner (its closes);
        ``rtt`` gets a sample from every complete exchange."""
        self._host = host
        self._rtt = rtt
        self._protocol = protocol
        self._spawn = spawn
        self._idle: OrderedDict[tuple[object, int], tuple[object, float]] = OrderedDict()
        """(peer, serial) -> (stream, idle since); oldest first."""
        self._serial = 0
        self.opened = 0
        self.reused = 0

    def _close_later(self, stream) -> None:
        """Close an idle stream without waiting (a reset: nothing is in flight on it)."""
        self._spawn(reset_quietly, stream)

    def idle_count(self, peer=None) -> int:
        return sum(1 for key in self._idle if peer is None or key[0] == peer)

    def _take(self, peer) -> object | None:
        now = trio.current_time()
        for key in [key for key in self._idle if key[0] == peer]:
            stream, since = self._idle.pop(key)
            if now - since <= IDLE_SECONDS and not _conn_closed(stream):
                return stream
            self._close_later(stream)
        return None

    def _give_back(self, peer, stream) -> None:
        if self.idle_count(peer) >= IDLE_PER_PEER:
            self._close_later(stream)
            return
        while len(self._idle) >= IDLE_TOTAL:
            _key, (oldest, _since) = self._idle.popitem(last=False)
            self._close_later(oldest)
        self._serial += 1
        self._idle[(peer, self._serial)] = (stream, trio.current_time())

    def sweep(self) -> int:
        """Close idle streams that are too old; returns how many."""
        now = trio.current_time()
        stale = [key for key, (stream, since) in self._idle.items()
                 if now - since > IDLE_SECONDS or _conn_closed(stream)]
        for key in stale:
            stream, _since = self._idle.pop(key)
            self._close_later(stream)
        return len(stale)

    def forget(self, peer) -> None:
        """Drop ``peer``'s idle streams (it failed: the next request starts afresh)."""
        for key in [key for key in self._idle if key[0] == peer]:
            stream, _since = self._idle.pop(key)
            self._close_later(stream)

    async def request(self, peer, data: bytes, max_reply: int) -> bytes:
        """Send one length-prefixed request to ``peer`` and read its reply frame."""
        stream = self._take(peer)
        if stream is not None:
            self.reused += 1
            started = trio.current_time()
            try:
                reply = await self._exchange(peer, stream, data, max_reply)
            except StreamEnded as exc:  # closed while idle: once more on a new stream
                logger.debug("reused stream to %s ended (%s); opening a new one", peer, exc)
            else:
                self._sample(peer, started, REQUEST_ROUND_TRIPS)
                return reply
        forget_closed_connections(self._host, peer)
        connected = has_open_connection(self._host, peer)
        started = trio.current_time()
        stream = await self._host.new_stream(peer, [self._protocol])
        self.opened += 1
        reply = await self._exchange(peer, stream, data, max_reply)
        self._sample(peer, started, NEW_STREAM_ROUND_TRIPS if connected
                     else SETUP_ROUND_TRIPS + REQUEST_ROUND_TRIPS)
        return reply

    def _sample(self, peer, started: float, round_trips: int) -> None:
        if self._rtt is not None:
            now = trio.current_time()
            self._rtt.observe(peer.to_bytes(), now - started, now, round_trips=round_trips)

    async def _exchange(self, peer, stream, data: bytes, max_reply: int) -> bytes:
        complete = False
        try:
            try:
                await stream.write(uvarint(len(data)) + data)
            except StreamError as exc:
                raise StreamEnded(f"write failed: {exc or type(exc).__name__}") from None
            reply = await read_uvarint_frame(stream, max_reply)
            complete = True
            return reply
        finally:
            if complete:
                self._give_back(peer, stream)
            else:  # half a request or reply may be in flight: never reuse it
                await reset_quietly(stream)


def has_open_connection(host, peer_id) -> bool:
    """Whether the swarm holds a live connection to ``peer_id`` (a new stream needs no dial)."""
    return any(not getattr(conn, "is_closed", False)
               for conn in host.get_network().get_connections(peer_id))


def _conn_closed(stream) -> bool:
    conn = getattr(stream, "muxed_conn", None)
    return bool(getattr(conn, "is_closed", False))

