"""Load budgets, as pure token buckets: what a searching user may cost the
network, and what a DHT server accepts before it sheds load.

Two sides of one policy (``docs/scale.md``, "Load budget (shipped policy)"):

* **a searching user** spends at most :data:`SEARCH_RATE` DHT requests a
  second on average once its first allowance (:data:`SEARCH_FIRST` requests,
  about its first 10 s of searching) is spent. Every request the node sends (walks,
  announcements) is charged to one :class:`TokenBucket`; the search planner
  (:mod:`.search`) starts a new walk only when the bucket holds what the last
  walk cost. Announcements are never held back (others find us through our
  records), they put the bucket in debt instead, which the walks then wait
  out;
* **a DHT server** answers each peer at most :data:`PEER_RATE` requests a
  second (bursts of :data:`PEER_BURST`), everyone together at most
  :data:`SERVER_RATE`, with at most :data:`STREAMS_PER_PEER` inbound streams
  per peer (:class:`ServerLimits`). A request over the limit gets its stream
  reset, as the Kademlia spec says for any error: the client counts a
  failure and asks another of the key's holders.

Pure: time is always passed in (``now``, seconds of any monotonic clock).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

SEARCH_RATE = 1.0
"""DHT requests a second a searching user may send on average (issue 9)."""
SEARCH_FIRST = 40.0
"""Requests a searching user may send at first, besides the rate: its first
searches and announcement of the first ~10 s (a walk of one key costs 5-10
requests on a small network, an announcement about 2 per server holding it)."""
SEARCH_FIRST_SECONDS = 10.0
"""What is left of the first allowance lapses this long after the first search
began: after it, the rate holds."""
SEARCH_BURST = 10.0
"""Requests a searching user may save up once the first allowance is spent:
little, so that after the first 10 s the rate holds over any minute, not
only in the long run."""
SEARCH_MAX_DEBT = 120.0
"""How far announcements may drive the search budget below zero: the walks
wait at most this many seconds (at :data:`SEARCH_RATE`) for them."""

PEER_RATE = 5.0
"""Inbound Kademlia requests a second a server answers per peer."""
PEER_BURST = 50.0
"""Requests a peer may send a server at once (a walk round and an
announcement of many keys together)."""
SERVER_RATE = 400.0
"""Inbound requests a second a server answers in all (py-libp2p answers a
request in ~1 ms of CPU; this leaves room for the node's own work)."""
SERVER_BURST = 800.0
STREAMS_PER_PEER = 16
"""Inbound Kademlia streams one peer may hold open on a server at once."""
MAX_TRACKED_PEERS = 4096
"""Per-peer buckets a server keeps (least recently used dropped first: a
dropped peer starts again with a full bucket, which costs at most one burst)."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; may run into debt."""

    def __init__(self, rate: float, burst: float, now: float, *,
                 max_debt: float = 0.0, initial: float | None = None,
                 initial_seconds: float = float("inf")) -> None:
        """``initial``: the tokens at ``now`` (default: a full bucket); more than
        ``burst`` is a one-time allowance, never saved up again, and what is
        left of it above ``burst`` lapses ``initial_seconds`` after ``now``."""
        if not (rate > 0 and burst >= 1 and max_debt >= 0 and (initial is None or initial >= 0)):
            raise ValueError(f"bad token bucket: rate={rate!r}, burst={burst!r}, "
                             f"max_debt={max_debt!r}, initial={initial!r}")
        self.rate = rate
        self.burst = burst
        self.max_debt = max_debt
        self._tokens = burst if initial is None else initial
        self._initial_until = now + initial_seconds
        """When what is left of an initial allowance above ``burst`` lapses."""
        self._at = now
        self.spent = 0.0
        """Tokens taken or spent since creation (for statistics)."""

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (negative: in debt)."""
        self._refill(now)
        return self._tokens

    def _refill(self, now: float) -> None:
        if now >= self._initial_until and self._tokens > self.burst:
            self._tokens = self.burst
        if now > self._at:
            if self._tokens < self.burst:  # above it: an initial allowance, not refilled
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def try_take(self, now: float, amount: float = 1.0) -> bool:
        """Take ``amount`` if the bucket holds it; False (and nothing taken) otherwise."""
        self._refill(now)
        if self._tokens < amount:
            return False
        self._tokens -= amount
        self.spent += amount
        return True

    def spend(self, now: float, amount: float) -> None:
        """Charge ``amount`` whether or not it is there (down to ``-max_debt``)."""
        if amount <= 0:
            return
        self._refill(now)
        self._tokens = max(-self.max_debt, self._tokens - amount)
        self.spent += amount

    def ready_at(self, now: float, amount: float) -> float:
        """When the bucket will hold ``amount`` (``now`` if it does; capped at a full bucket)."""
        self._refill(now)
        wanted = min(amount, self.burst)
        if self._tokens >= wanted:
            return now
        return now + (wanted - self._tokens) / self.rate


def search_budget(now: float) -> TokenBucket:
    """The request budget of one searching node, with its first allowance."""
    return TokenBucket(SEARCH_RATE, SEARCH_BURST, now, max_debt=SEARCH_MAX_DEBT,
                       initial=SEARCH_FIRST, initial_seconds=SEARCH_FIRST_SECONDS)


@dataclass
class ServerStatistics:
    """What a server's limits have let through and shed."""

    allowed: int = 0
    shed_peer_rate: int = 0
    shed_server_rate: int = 0
    shed_streams: int = 0

    @property
    def shed(self) -> int:
        return self.shed_peer_rate + self.shed_server_rate + self.shed_streams


class ServerLimits:
    """Per-peer and total request rates, and per-peer stream counts, of one DHT server."""

    def __init__(self, now: float, *, peer_rate: float = PEER_RATE, peer_burst: float = PEER_BURST,
                 server_rate: float = SERVER_RATE, server_burst: float = SERVER_BURST,
                 streams_per_peer: int = STREAMS_PER_PEER,
                 max_peers: int = MAX_TRACKED_PEERS) -> None:
        if streams_per_peer < 1 or max_peers < 1:
            raise ValueError(f"bad server limits: streams_per_peer={streams_per_peer!r}, "
                             f"max_peers={max_peers!r}")
        self._peer_rate = peer_rate
        self._peer_burst = peer_burst
        self._streams_per_peer = streams_per_peer
        self._max_peers = max_peers
        self._total = TokenBucket(server_rate, server_burst, now)
        self._peers: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self._streams: dict[Hashable, int] = {}
        self.stats = ServerStatistics()

    def allow_request(self, peer: Hashable, now: float) -> bool:
        """Whether to answer one more request of ``peer`` now (False: shed it)."""
        bucket = self._peers.pop(peer, None)
        if bucket is None:
            bucket = TokenBucket(self._peer_rate, self._peer_burst, now)
        self._peers[peer] = bucket  # most recently used last
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
        if not bucket.try_take(now):
            self.stats.shed_peer_rate += 1
            return False
        if not self._total.try_take(now):
            self.stats.shed_server_rate += 1
            return False
        self.stats.allowed += 1
        return True

    def open_stream(self, peer: Hashable) -> bool:
        """Count one more inbound stream of ``peer``; False (not counted) over the limit."""
        count = self._streams.get(peer, 0)
        if count >= self._streams_per_peer:
            self.stats.shed_streams += 1
            return False
        self._streams[peer] = count + 1
        return True

    def close_stream(self, peer: Hashable) -> None:
        """One inbound stream of ``peer`` has ended."""
        count = self._streams.get(peer, 0) - 1
        if count > 0:
            self._streams[peer] = count
        else:
            self._streams.pop(peer, None)

    def streams(self, peer: Hashable) -> int:
        return self._streams.get(peer, 0)

    def tracked_peers(self) -> int:
        return len(self._peers)
