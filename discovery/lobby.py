"""Lobby rules (pure): topic names, the message format, limits, nicknames, the member estimate.

A *lobby* is one GossipSub topic per (lane, canonical interest) where everyone
who joined reads everyone else. ``docs/protocol.md`` §10 is the specification;
this module is its reference implementation, and the adapter
(``strangers.node.lobby``) only moves bytes for it.

    topic  = "strangers/v1/lobby/<lane>/<canonical interest>"
    data   = UTF-8 JSON object {"v": 1, "text": "<1..500 characters>"}   (<= 1024 bytes)
    key    = sha2-256 multihash of "strangers/v1/lobby/<lane>/<interest>/<epoch>"
             (DHT provider records: who is in the lobby in this epoch)

Messages are GossipSub messages with strict signing: ``from`` is the sender's
peer id, ``seqno`` 8 bytes, signed with the sender's peer key. Anyone in the
topic reads them: lobbies are public rooms, never end-to-end encrypted.

Everything here is pure: ``now`` is passed in.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from strangers.errors import ConfigError, RemoteProtocolError

from .interests import normalize_interest
from .topics import EPOCH_SECONDS, epoch_at

VERSION = 1
LANES = ("general", "adult")
"""Lanes keep audiences apart: the lobbies of one lane never see another's."""
DEFAULT_LANE = "general"

MAX_TEXT_CHARS = 500
"""Longest lobby message, in characters."""
MAX_DATA_BYTES = 1024
"""Largest message payload (the JSON object), in bytes; bigger ones are invalid."""

SEND_RATE = 20.0
"""Messages per second one sender may publish, sustained (people type far slower)."""
SEND_BURST = 40.0
"""Messages one sender may publish at once before the rate applies."""
RELAY_SLACK = 2.0
"""Relayed messages get this factor more burst: arrival jitter may bunch up a
sender's messages on the way, and an honest relay must not be blamed for it."""
DROP_AFTER_REJECTS = 30
"""A direct peer that sends this many over-rate messages within
:data:`REJECT_WINDOW` seconds is disconnected and refused for :data:`BAN_SECONDS`."""
REJECT_WINDOW = 10.0
"""(Below GossipSub's publish threshold, 40 invalid messages, a peer's messages
are refused before validation: the drop must come first.)"""
BAN_SECONDS = 120.0

MAX_TRACKED_SENDERS = 4096
"""Rate-limit buckets kept (least recently used dropped beyond)."""

MEMBER_TTL = 90.0
"""A member learnt from a message or a subscription is counted this long after last seen."""
RECORD_TTL = 2 * EPOCH_SECONDS
"""A member learnt from a DHT record is counted for two epochs (records rotate per epoch)."""
MAX_MEMBERS_TRACKED = 10000

_NAMESPACE = "strangers/v1/lobby"
_MULTIHASH_SHA2_256 = b"\x12\x20"


def normalize_lane(lane: str) -> str:
    if lane not in LANES:
        raise ConfigError(f"unknown lane {lane!r} (one of {', '.join(LANES)})")
    return lane


def lobby_topic(interest: str, lane: str = DEFAULT_LANE) -> str:
    """The GossipSub topic of the lobby of ``interest`` (normalised here) in ``lane``."""
    return f"{_NAMESPACE}/{normalize_lane(lane)}/{normalize_interest(interest)}"


def parse_topic(topic: str) -> tuple[str, str]:
    """(lane, interest) of a lobby topic; raises RemoteProtocolError if it is not one."""
    if not isinstance(topic, str) or not topic.startswith(_NAMESPACE + "/"):
        raise RemoteProtocolError(f"not a lobby topic: {topic!r:.100}")
    lane, _, interest = topic[len(_NAMESPACE) + 1:].partition("/")
    try:
        if lobby_topic(interest, lane) != topic:
            raise RemoteProtocolError(f"lobby topic not in canonical form: {topic!r:.100}")
    except ConfigError as exc:
        raise RemoteProtocolError(f"bad lobby topic {topic!r:.100}: {exc}") from None
    return lane, interest


def member_key(topic: str, epoch: int) -> bytes:
    """The DHT key (sha2-256 multihash) members of ``topic`` announce themselves on in ``epoch``."""
    parse_topic(topic)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    name = f"{topic}/{epoch}"
    return _MULTIHASH_SHA2_256 + hashlib.sha256(name.encode("utf-8")).digest()


def member_keys(topic: str, now: float) -> list[bytes]:
    """Keys to look members up at ``now``: this epoch's, and the previous one's."""
    epoch = epoch_at(now)
    return [member_key(topic, e) for e in ((epoch, epoch - 1) if epoch > 0 else (epoch,))]


def check_text(text: object) -> str:
    """``text`` if we may send it; LocalProtocolError-like ConfigError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("cannot send an empty message")
    if len(text) > MAX_TEXT_CHARS:
        raise ConfigError(f"message too long ({len(text)} characters, at most {MAX_TEXT_CHARS})")
    if any(unicodedata.category(char) == "Cs" for char in text):
        raise ConfigError("message contains unpaired surrogates")
    return text


def encode_message(text: str) -> bytes:
    """The payload of a lobby message (raises ConfigError for text we may not send)."""
    data = json.dumps({"v": VERSION, "text": check_text(text)}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_DATA_BYTES:
        raise ConfigError(f"message too long ({len(data)} bytes encoded, at most {MAX_DATA_BYTES})")
    return data


def decode_message(data: bytes) -> str:
    """The text of a lobby payload; RemoteProtocolError if it breaks a rule of §10."""
    if not isinstance(data, (bytes, bytearray)):
        raise RemoteProtocolError("lobby payload must be bytes")
    if len(data) > MAX_DATA_BYTES:
        raise RemoteProtocolError(f"lobby message too large ({len(data)} bytes)")
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RemoteProtocolError("lobby message is not UTF-8 JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION or isinstance(obj.get("v"), bool):
        raise RemoteProtocolError("lobby message must be a JSON object with \"v\": 1")
    text = obj.get("text")
    try:
        return check_text(text)
    except ConfigError as exc:
        raise RemoteProtocolError(f"bad lobby text: {exc}") from None


# -- nicknames ---------------------------------------------------------------------

_ADJECTIVES = (
    "amber", "brave", "calm", "clever", "cosmic", "curious", "dapper", "eager", "fancy",
    "fuzzy", "gentle", "golden", "happy", "honest", "jolly", "kind", "lively", "lucky",
    "merry", "mellow", "misty", "nimble", "noble", "plucky", "polite", "quick", "quiet",
    "rosy", "rustic", "shiny", "silver", "sleepy", "snowy", "sunny", "swift", "tidy",
    "vivid", "witty", "zesty", "breezy",
)
_ANIMALS = (
    "otter", "badger", "falcon", "panda", "koala", "lynx", "heron", "gecko", "walrus",
    "beaver", "bison", "camel", "dingo", "ferret", "gibbon", "hedgehog", "ibis", "jackal",
    "lemur", "marmot", "narwhal", "ocelot", "puffin", "quokka", "raven", "seal", "tapir",
    "urchin", "vole", "wombat", "yak", "zebra", "moose", "newt", "owl", "fox", "crane",
    "dolphin", "mole", "toucan",
)


def nickname(peer_id: bytes) -> str:
    """A short, readable name for a peer id (its bytes): the same id, the same name.

    ``adjective-animal-NN``: 40 x 40 x 100 = 160,000 names. Two members may
    share one (rarely); ``/chat`` then asks to pick by id (see
    :func:`resolve_nick`). A nickname is a label, never a proof of identity.
    """
    digest = hashlib.sha256(b"strangers lobby nick\x00" + bytes(peer_id)).digest()
    adjective = _ADJECTIVES[digest[0] % len(_ADJECTIVES)]
    animal = _ANIMALS[digest[1] % len(_ANIMALS)]
    number = int.from_bytes(digest[2:4], "big") % 100
    return f"{adjective}-{animal}-{number:02d}"


def resolve_nick(query: str, members: dict[str, str]) -> str:
    """The peer id (base58) in ``members`` (peer id -> nick) that ``query`` names.

    ``query`` may be a nickname (case-insensitive), a peer id, or the end of one.
    Raises ConfigError (the message is for the user) when none or several match.
    """
    wanted = query.strip().lstrip("@").lower()
    if not wanted:
        raise ConfigError("name someone: /chat NICK")
    hits = [peer for peer, nick in members.items() if nick.lower() == wanted]
    if not hits:
        hits = [peer for peer in members if peer == query.strip() or
                (len(wanted) >= 6 and peer.lower().endswith(wanted))]
    if not hits:
        raise ConfigError(f"nobody called {query!r:.60} in this lobby (yet)")
    if len(hits) > 1:
        raise ConfigError(f"{len(hits)} members are called {query!r:.60}: "
                          f"use the end of a peer id ({', '.join(p[-8:] for p in hits)})")
    return hits[0]


# -- limits ------------------------------------------------------------------------

class Verdict(Enum):
    ACCEPT = "accept"
    """Valid: deliver and forward."""
    REJECT = "reject"
    """Invalid or over the sender's rate: not delivered, not forwarded; the forwarder loses score."""
    DROP_PEER = "drop_peer"
    """Rejected, and the direct peer that sent it floods: disconnect and refuse it a while."""


@dataclass
class _Bucket:
    tokens: float
    last: float


class TokenBuckets:
    """One token bucket per key (bounded, least recently used evicted); time passed in."""

    def __init__(self, rate: float, burst: float, *, capacity: int = MAX_TRACKED_SENDERS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate!r}, {burst!r}")
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    def take(self, key: bytes, now: float) -> bool:
        """Spend one token of ``key``'s bucket; False (nothing spent) when it is empty."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.last) * self.rate)
            bucket.last = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False


class LobbyRules:
    """Validation of lobby messages before they are delivered or forwarded.

    ``check(topic, origin, forwarder, data, now)``: the payload must decode
    (§10), the sender (``origin``, the signed ``from``) must keep to
    :data:`SEND_RATE` / :data:`SEND_BURST` (relayed copies get
    :data:`RELAY_SLACK` times the burst), and a direct peer that keeps
    sending over-rate messages is to be dropped (:data:`DROP_AFTER_REJECTS`).
    """

    def __init__(self, topic: str) -> None:
        parse_topic(topic)
        self.topic = topic
        self._direct = TokenBuckets(SEND_RATE, SEND_BURST)
        self._relayed = TokenBuckets(SEND_RATE, SEND_BURST * RELAY_SLACK)
        self._rejects: OrderedDict[bytes, list[float]] = OrderedDict()
        self.accepted = 0
        self.rejected = 0
        self.malformed = 0

    def check(self, topic: str, origin: bytes, forwarder: bytes, data: bytes,
              now: float) -> Verdict:
        if topic != self.topic:
            return self._reject(forwarder, now, malformed=True)
        try:
            decode_message(data)
        except RemoteProtocolError:
            return self._reject(forwarder, now, malformed=True)
        buckets = self._direct if origin == forwarder else self._relayed
        if not buckets.take(origin, now):
            return self._reject(forwarder, now, malformed=False)
        self.accepted += 1
        return Verdict.ACCEPT

    def check_own(self, origin: bytes, now: float) -> bool:
        """Whether we may publish now (our own messages keep to the same rate)."""
        return self._direct.take(origin, now)

    def _reject(self, forwarder: bytes, now: float, *, malformed: bool) -> Verdict:
        self.rejected += 1
        self.malformed += malformed
        times = self._rejects.pop(forwarder, [])
        times = [t for t in times if now - t < REJECT_WINDOW]
        times.append(now)
        self._rejects[forwarder] = times[-DROP_AFTER_REJECTS:]
        while len(self._rejects) > MAX_TRACKED_SENDERS:
            self._rejects.popitem(last=False)
        if len(times) >= DROP_AFTER_REJECTS:
            del self._rejects[forwarder]
            return Verdict.DROP_PEER
        return Verdict.REJECT


# -- the member estimate -------------------------------------------------------------

class MemberEstimate:
    """How many people are in a lobby: everyone seen lately, by any of three signs.

    A member counts while one of these is fresh: its GossipSub subscription
    (a peer we are connected to), a message from it (:data:`MEMBER_TTL`), or
    its DHT provider record (:data:`RECORD_TTL`). We count ourselves when joined.
    """

    def __init__(self, *, joined: bool = True) -> None:
        self.joined = joined
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # peer -> until

    def saw(self, peer: bytes, now: float, *, ttl: float = MEMBER_TTL) -> None:
        until = max(self._seen.pop(peer, 0.0), now + ttl)
        self._seen[peer] = until
        while len(self._seen) > MAX_MEMBERS_TRACKED:
            self._seen.popitem(last=False)

    def saw_record(self, peer: bytes, now: float) -> None:
        self.saw(peer, now, ttl=RECORD_TTL)

    def left(self, peer: bytes) -> None:
        """The peer unsubscribed (a clean leave): stop counting it at once."""
        self._seen.pop(peer, None)

    def count(self, now: float, *, subscribed: set[bytes] | frozenset[bytes] = frozenset()) -> int:
        for peer in [p for p, until in self._seen.items() if until <= now]:
            del self._seen[peer]
        others = set(self._seen) | set(subscribed)
        return len(others) + (1 if self.joined else 0)

    def members(self, now: float) -> list[bytes]:
        return [p for p, until in self._seen.items() if until > now]
