"""Topic keys: where on the DHT the people looking for a chat about X are listed.

A node that is looking for a stranger announces itself as a *provider* of one
key per interest (and of the general key when it accepts random strangers).
Keys are content identifiers, so that any libp2p Kademlia DHT (go, js, rust,
py) stores and serves them like any other provider record:

    name    = "strangers/v1/interest/<canonical interest>/<epoch>/<shard>"
            | "strangers/v1/anyone/<epoch>/<shard>"
    digest  = sha2-256(utf-8(name))
    key     = multihash = 0x12 0x20 || digest      (the DHT key bytes)
    cid     = CIDv1, codec raw (0x55), that multihash ("bafkrei...")

*Freshness.* Provider records outlive the nodes that wrote them (a DHT keeps
them for up to 48 h), so the key rotates with a time epoch of
:data:`EPOCH_SECONDS`; a node re-advertises within
:data:`READVERTISE_SPREAD` seconds of each new epoch, and lookups cover the
current epoch, plus the previous one during the new epoch's first
:data:`PREVIOUS_EPOCH_WINDOW` seconds (until everyone still looking has
re-advertised).  A record of a node that left is therefore seen for at most
two epochs, and then only as a candidate that fails to answer (skipped within
a second).

*Sharding.* A popular interest would put every one of its users on the same
twenty DHT nodes, and every search of it would ask the same node.  ``shard``
spreads them over :data:`SHARDS` keys: a node advertises on one shard chosen
at random, and a search first *probes* that one shard, then looks up all the
others at once only if the probe found nobody (:func:`search_rounds`).  A hot
interest is found by the probe, so its load is divided by :data:`SHARDS`; a
rare one costs a second round.  The shard count is part of the name, so it can
only change with the version.

Everything here is pure: the epoch is computed from a ``now`` passed in.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from strangers.errors import ConfigError

from .interests import normalize_interest

EPOCH_SECONDS = 300
"""Length of one key epoch, in seconds of Unix time."""

SHARDS = 8
"""Number of shards per interest and epoch (see the module docstring and
``docs/scale.md``, which sized it: 1/8 of the load of a hot interest per node)."""

READVERTISE_SPREAD = 120.0
"""A node still looking re-advertises within this many seconds of a new epoch
(a random delay, so a popular key's holders do not all take a burst at once)."""

PREVIOUS_EPOCH_WINDOW = READVERTISE_SPREAD + 60.0
"""Seconds into an epoch during which lookups also cover the previous epoch:
the re-advertising spread plus a minute for clocks that are behind ours.
After that, a previous-epoch record is of someone who left or is chatting."""

_NAMESPACE = "strangers/v1"
_MULTIHASH_SHA2_256 = b"\x12\x20"
_CID_V1_RAW = b"\x01\x55"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_canonical(interest: object) -> bool:
    try:
        return normalize_interest(interest) == interest  # type: ignore[arg-type]
    except ConfigError:
        return False


@dataclass(frozen=True)
class TopicKey:
    """One DHT key: what it stands for and its bytes."""

    interest: str | None
    """Canonical interest, or None for the general ("anyone") key."""
    epoch: int
    shard: int

    def __post_init__(self) -> None:
        if self.interest is not None and not _is_canonical(self.interest):
            raise ValueError(f"interest must be in canonical form, got {self.interest!r}")
        # an epoch of 5.0 or True would hash to a different name than 5 or 1
        if not _is_int(self.epoch) or self.epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {self.epoch!r}")
        if not _is_int(self.shard) or not 0 <= self.shard < SHARDS:
            raise ValueError(f"shard must be in [0, {SHARDS}), got {self.shard!r}")

    @property
    def name(self) -> str:
        """The versioned, namespaced string that is hashed."""
        if self.interest is None:
            return f"{_NAMESPACE}/anyone/{self.epoch}/{self.shard}"
        return f"{_NAMESPACE}/interest/{self.interest}/{self.epoch}/{self.shard}"

    @property
    def multihash(self) -> bytes:
        """The key as sent in Kademlia messages (a sha2-256 multihash)."""
        return _MULTIHASH_SHA2_256 + hashlib.sha256(self.name.encode("utf-8")).digest()

    @property
    def cid(self) -> str:
        """CIDv1 (raw codec) in base32, the form other libp2p tools print."""
        raw = _CID_V1_RAW + self.multihash
        return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def epoch_at(now: float) -> int:
    """The epoch number that Unix time ``now`` falls in."""
    return int(now // EPOCH_SECONDS)


def seconds_to_next_epoch(now: float) -> float:
    """How long until the next epoch starts (for the re-advertising timer)."""
    return EPOCH_SECONDS - (now % EPOCH_SECONDS)


def advertise_keys(
    interests: tuple[str, ...], *, anyone: bool, now: float, shard: int = 0
) -> list[TopicKey]:
    """Keys to announce ourselves on at time ``now``: the current epoch only."""
    epoch = epoch_at(now)
    keys = [TopicKey(interest, epoch, shard) for interest in interests]
    if anyone:
        keys.append(TopicKey(None, epoch, shard))
    return keys


def lookup_epochs(now: float) -> list[int]:
    """Epochs to search at ``now``: the current one, and the previous one early on."""
    epoch = epoch_at(now)
    if epoch > 0 and now - epoch * EPOCH_SECONDS < PREVIOUS_EPOCH_WINDOW:
        return [epoch, epoch - 1]
    return [epoch]


def lookup_keys(
    interests: tuple[str, ...],
    *,
    anyone: bool,
    now: float,
    shards: range | list[int] | tuple[int, ...] | None = None,
) -> list[TopicKey]:
    """Keys to search at ``now``: ``shards`` (default every shard) of :func:`lookup_epochs`.

    Ordered by topic, then epoch, then shard.
    """
    topics: list[str | None] = list(interests)
    if anyone:
        topics.append(None)
    chosen = range(SHARDS) if shards is None else shards
    return [
        TopicKey(topic, ep, shard)
        for topic in topics
        for ep in lookup_epochs(now)
        for shard in chosen
    ]


def search_rounds(
    interests: tuple[str, ...], *, anyone: bool, now: float, probe: int
) -> tuple[list[TopicKey], list[TopicKey]]:
    """One search as two rounds: shard ``probe`` first, then every other shard.

    The second round is only walked when the first found nobody to propose
    to. A searcher probes the shard it advertises on, itself drawn at random,
    so the probes of a hot interest spread evenly over its shards.
    """
    if not _is_int(probe) or not 0 <= probe < SHARDS:
        raise ValueError(f"probe shard must be in [0, {SHARDS}), got {probe!r}")
    first = lookup_keys(interests, anyone=anyone, now=now, shards=(probe,))
    rest = lookup_keys(interests, anyone=anyone, now=now,
                       shards=[shard for shard in range(SHARDS) if shard != probe])
    return first, rest
