"""Flood limits: per-peer token buckets and cool-downs (pure: time is passed in).

Each kind of thing a peer can make us do (propose, open a stream, send a chat
message) has a :class:`TokenBucket` per peer: ``rate`` tokens a second, at
most ``burst`` saved up. A peer that keeps going once its bucket is empty
(:attr:`Limit.strikes` refusals in a row) is *flooding*: the node disconnects
it and refuses it for :attr:`Limit.cooldown` seconds.

Memory is bounded: at most :data:`MAX_TRACKED` peers per kind are tracked;
the least recently seen is forgotten first (a forgotten peer starts with a
full bucket, which only favours it by one burst).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field

from strangers.errors import ConfigError

MAX_TRACKED = 1024


class Verdict(enum.Enum):
    ALLOW = "allow"
    """Go on."""
    DENY = "deny"
    """Over the limit (or cooling down): refuse this one."""
    FLOODING = "flooding"
    """Over the limit once too often: refuse, disconnect, cool down (returned once)."""


@dataclass(frozen=True)
class Limit:
    rate: float
    """Tokens per second."""
    burst: float
    """Tokens saved up at most (and at first)."""
    strikes: int = 5
    """Refusals in a row that make a flood."""
    cooldown: float = 60.0
    """Seconds a flooding peer is refused for."""

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1 and self.strikes >= 1 and self.cooldown >= 0):
            raise ConfigError(f"bad limit {self!r}")


PROPOSALS = Limit(rate=1.0, burst=5, strikes=5, cooldown=60.0)
"""Match proposals a peer may send us: an honest node proposes to us at most
once per search (twice on a broken stream)."""
STREAMS = Limit(rate=4.0, burst=16, strikes=8, cooldown=60.0)
"""Match and chat streams a peer may open to us."""
MESSAGES = Limit(rate=10.0, burst=100, strikes=20, cooldown=60.0)
"""Chat messages (texts and typing notices) a stranger may send: a burst of
100 (a pasted text, a program's test), then ten a second; 20 more over that
and the chat ends."""


@dataclass
class TokenBucket:
    limit: Limit
    tokens: float
    updated: float
    denied: int = 0
    cooling_until: float = field(default=float("-inf"))

    @classmethod
    def full(cls, limit: Limit, now: float) -> TokenBucket:
        return cls(limit, float(limit.burst), now)

    def take(self, now: float, cost: float = 1.0) -> Verdict:
        """Spend ``cost`` tokens at ``now``, if the peer may."""
        if now < self.cooling_until:
            return Verdict.DENY
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= cost:
            self.tokens -= cost
            self.denied = 0
            return Verdict.ALLOW
        self.denied += 1
        if self.denied >= self.limit.strikes:
            self.denied = 0
            self.cooling_until = now + self.limit.cooldown
            self.tokens = 0.0
            return Verdict.FLOODING
        return Verdict.DENY


class PeerLimits:
    """One bucket per peer for one kind of thing, at most ``tracked`` peers."""

    def __init__(self, limit: Limit, *, tracked: int = MAX_TRACKED) -> None:
        if tracked < 1:
            raise ConfigError(f"must track at least one peer, got {tracked!r}")
        self.limit = limit
        self.tracked = tracked
        self._buckets: OrderedDict[bytes | str, TokenBucket] = OrderedDict()
        self.denied = 0
        """Refusals so far (for statistics and tests)."""
        self.floods = 0
        """Peers found flooding so far."""

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, peer: bytes | str, now: float, cost: float = 1.0) -> Verdict:
        bucket = self._buckets.pop(peer, None)
        if bucket is None:
            bucket = TokenBucket.full(self.limit, now)
        self._buckets[peer] = bucket  # most recently seen last
        while len(self._buckets) > self.tracked:
            oldest, old = next(iter(self._buckets.items()))
            if old.cooling_until > now and len(self._buckets) > 1 and oldest != peer:
                # keep a cooling peer over a quiet one: move it to the end once
                self._buckets.move_to_end(oldest)
                oldest = next(iter(self._buckets))
            del self._buckets[oldest]
        verdict = bucket.take(now, cost)
        if verdict is not Verdict.ALLOW:
            self.denied += 1
        if verdict is Verdict.FLOODING:
            self.floods += 1
        return verdict

    def cooling(self, peer: bytes | str, now: float) -> bool:
        bucket = self._buckets.get(peer)
        return bucket is not None and now < bucket.cooling_until

    def cool(self, peer: bytes | str, now: float) -> None:
        """Refuse ``peer`` for the limit's cool-down from ``now`` (it flooded something else)."""
        self.take(peer, now, cost=0.0)
        self._buckets[peer].cooling_until = now + self.limit.cooldown
