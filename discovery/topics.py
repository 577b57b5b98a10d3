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
:data:`EPOCH_SECONDS`; a node re-advertises at each new epoch, and lookups
cover the current and the previous epoch.  A record of a node that left is
therefore seen for at most two epochs, and then only as a candidate that
fails to answer (skipped within a second).

*Sharding.* A popular interest would put every one of its users on the same
twenty DHT nodes. ``shard`` spreads them over :data:`SHARDS` keys; a node
advertises on one shard chosen at random and looks up shards in random order
until it has candidates.  The shard count is part of the name, so it can only
change with the version.

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

SHARDS = 1
"""Number of shards per interest and epoch (see the module docstring)."""

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


def lookup_keys(
    interests: tuple[str, ...], *, anyone: bool, now: float
) -> list[TopicKey]:
    """Keys to search at time ``now``: every shard of the current and previous epoch."""
    epoch = epoch_at(now)
    epochs = [epoch, epoch - 1] if epoch > 0 else [epoch]
    topics: list[str | None] = list(interests)
    if anyone:
        topics.append(None)
    return [
        TopicKey(topic, ep, shard)
        for topic in topics
        for ep in epochs
        for shard in range(SHARDS)
    ]
