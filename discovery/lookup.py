"""The Kademlia iterative lookup, as a pure state machine.

This is the "closest peers" iterator of the libp2p Kademlia spec, in the
style of rust-libp2p's ``kad/src/query/peers/closest.rs``: no sockets, no
clock. The adapter asks :meth:`ClosestPeersQuery.next` which peers to query
*now*, runs those RPCs, and reports each outcome with :meth:`on_success` or
:meth:`on_failure`. Time is passed in, so the same code runs on a real network
and in the internet-scale simulation (``bench/simulate.py``).

Peers are identified by their peer-id bytes; a key is the bytes stored on the
DHT (a multihash).  Distance is the XOR of the SHA-256 of each, as in every
libp2p implementation, so this walk converges on the same nodes that go, js
or rust libp2p would pick for the same key.

The lookup ends when the ``num_results`` closest peers that did not fail have
all answered, or when nobody is left to ask.  At most ``parallelism`` queries
are in flight; a peer that has not answered within ``peer_timeout`` counts as
failed and frees its slot.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

K_VALUE = 20
"""Kademlia's k: the replication factor and the size of a lookup result."""

ALPHA = 3
"""Queries in flight at once during one lookup."""

SEARCH_CLOSEST = 5
"""``num_results`` of a search's fast provider walks: a key that may be empty
needs only its few closest peers to answer, since an announcer stored its
record on its K closest (``docs/scale.md`` simulated 3; 5 is safer when some of
the closest are dead)."""


def kad_distance(a: bytes, b: bytes) -> int:
    """XOR distance between two byte strings in the SHA-256 keyspace."""
    return int.from_bytes(hashlib.sha256(a).digest(), "big") ^ int.from_bytes(
        hashlib.sha256(b).digest(), "big"
    )


class PeerState(enum.Enum):
    """Where one peer stands in a lookup."""

    NOT_CONTACTED = "not-contacted"
    """Known, not asked yet."""
    WAITING = "waiting"
    """Asked; the answer is due before its deadline."""
    SUCCEEDED = "succeeded"
    """Answered."""
    FAILED = "failed"
    """Could not be reached, answered garbage, or timed out."""


@dataclass(frozen=True)
class LookupStatistics:
    """Counters of one lookup, for benchmarks and logs."""

    queried: int
    succeeded: int
    failed: int
    known: int


@dataclass
class _Entry:
    distance: int
    state: PeerState = PeerState.NOT_CONTACTED
    deadline: float = 0.0


class ClosestPeersQuery:
    """Iteratively find the peers closest to ``key``."""

    def __init__(
        self,
        key: bytes,
        seeds: Iterable[bytes],
        *,
        local_id: bytes | None = None,
        num_results: int = K_VALUE,
        parallelism: int = ALPHA,
        peer_timeout: float = 2.0,
    ) -> None:
        if num_results < 1 or parallelism < 1 or peer_timeout <= 0:
            raise ValueError(
                f"bad lookup settings: num_results={num_results!r}, "
                f"parallelism={parallelism!r}, peer_timeout={peer_timeout!r}"
            )
        self.key = key
        self._local_id = local_id
        self._num_results = num_results
        self._parallelism = parallelism
        self._peer_timeout = peer_timeout
        self._peers: dict[bytes, _Entry] = {}
        self._queried = 0
        self.add_peers(seeds)

    def add_peers(self, peers: Iterable[bytes]) -> None:
        """Learn peers (seeds, or closer peers from an answer)."""
        for peer in peers:
            if peer == self._local_id or peer in self._peers:
                continue
            self._peers[peer] = _Entry(kad_distance(peer, self.key))

    def _ranked(self) -> list[tuple[bytes, _Entry]]:
        return sorted(self._peers.items(), key=lambda item: item[1].distance)

    def _expire(self, now: float) -> None:
        for entry in self._peers.values():
            if entry.state is PeerState.WAITING and now >= entry.deadline:
                entry.state = PeerState.FAILED

    def next(self, now: float) -> list[bytes]:
        """Peers to query now (possibly none); marks them as waiting."""
        self._expire(now)
        if self.finished:
            return []
        in_flight = sum(e.state is PeerState.WAITING for e in self._peers.values())
        chosen: list[bytes] = []
        live = 0
        for peer, entry in self._ranked():
            if entry.state is PeerState.FAILED:
                continue
            live += 1
            if live > self._num_results:
                break
            if entry.state is PeerState.NOT_CONTACTED:
                if in_flight + len(chosen) >= self._parallelism:
                    break
                entry.state = PeerState.WAITING
                entry.deadline = now + self._peer_timeout
                chosen.append(peer)
        self._queried += len(chosen)
        return chosen

    def next_deadline(self) -> float | None:
        """Earliest deadline among queries in flight, or None."""
        deadlines = [
            e.deadline for e in self._peers.values() if e.state is PeerState.WAITING
        ]
        return min(deadlines) if deadlines else None

    def on_success(self, peer: bytes, closer_peers: Iterable[bytes]) -> None:
        """``peer`` answered and named ``closer_peers``."""
        entry = self._peers.get(peer)
        if entry is None or entry.state is not PeerState.WAITING:
            return  # a late answer from a peer that already timed out
        entry.state = PeerState.SUCCEEDED
        self.add_peers(closer_peers)

    def on_failure(self, peer: bytes) -> None:
        """``peer`` could not be asked or answered badly."""
        entry = self._peers.get(peer)
        if entry is not None and entry.state is PeerState.WAITING:
            entry.state = PeerState.FAILED

    @property
    def finished(self) -> bool:
        """True when the closest live peers have all answered, or none is left."""
        live = 0
        for _peer, entry in self._ranked():
            if entry.state is PeerState.FAILED:
                continue
            live += 1
            if entry.state is not PeerState.SUCCEEDED:
                return False
            if live >= self._num_results:
                return True
        return True

    def result(self) -> list[bytes]:
        """The closest peers that answered, nearest first."""
        return [
            peer
            for peer, entry in self._ranked()
            if entry.state is PeerState.SUCCEEDED
        ][: self._num_results]

    def statistics(self) -> LookupStatistics:
        states = [e.state for e in self._peers.values()]
        return LookupStatistics(
            queried=self._queried,
            succeeded=states.count(PeerState.SUCCEEDED),
            failed=states.count(PeerState.FAILED),
            known=len(states),
        )
