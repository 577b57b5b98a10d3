"""Topic keys: where on the DHT the people looking for a chat about X are listed.

A node that is looking for a stranger announces itself as a *provider* of one
key per interest (and of the general key when it accepts random strangers).
Keys are content identifiers, so that any libp2p Kademlia DHT (go, js, rust,
py) stores and serves them like any other provider record:

    name    = "strangers/v1/interest/<canonical interest>/<epoch>/<shard>"
            | "strangers/v1/anyone/<epoch>/<shard>"
            | "strangers/v1/lane/<lane>/interest/<canonical interest>/<epoch>/<shard>"
            | "strangers/v1/lane/<lane>/anyone/<epoch>/<shard>"
            | "strangers/v1/lang/<code>/interest/<canonical interest>/<epoch>/<shard>"
            | "strangers/v1/lang/<code>/anyone/<epoch>/<shard>"     (a language lane)
            | "strangers/v1/questions/interest/<canonical interest>/<epoch>/<shard>"
            | "strangers/v1/questions/anyone/<epoch>/<shard>"   (who discusses questions)
    digest  = sha2-256(utf-8(name))
    key     = multihash = 0x12 0x20 || digest      (the DHT key bytes)
    cid     = CIDv1, codec raw (0x55), that multihash ("bafkrei...")

*Lanes.* The general lane's names are the first two; every other lane
(:data:`LANES`: "adult", for ``--adult``) puts ``lane/<lane>/`` in front, so
its keys never meet the general lane's and nobody finds an adult chat without
opting in (proposals carry the lane too, and a node refuses another lane's).

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
spreads the searches over :data:`SHARDS` keys.  A node advertises twice: on
the *home* shard (:data:`HOME_SHARD`), where everyone is listed, and on one
other shard drawn at random.  On a large network, a search of an interest
known to be hot (its home answered with a full page) *probes* a random other
shard and looks at home only if the probe found nobody, so the searches of a
hot interest are spread over ``SHARDS - 1`` keys; a rare interest is looked
up at home, where everyone is; one not known yet, at home and on the probe
together (:func:`search_rounds`).  On a small network, where one node's load
does not matter and every walk costs a connection, a search looks at home
only.  The
shard count is part of the name, so it can only change with the version.

Everything here is pure: the epoch is computed from a ``now`` passed in.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random

from strangers.errors import ConfigError

from .interests import normalize_interest
from .language import is_lang

EPOCH_SECONDS = 300
"""Length of one key epoch, in seconds of Unix time."""

SHARDS = 8
"""Number of shards per interest and epoch (see the module docstring and
``docs/scale.md``, which sized it)."""

HOME_SHARD = 0
"""The shard every announcer is listed on, besides its random one."""

READVERTISE_SPREAD = 120.0
"""A node still looking re-advertises within this many seconds of a new epoch
(a random delay, so a popular key's holders do not all take a burst at once)."""

PREVIOUS_EPOCH_WINDOW = READVERTISE_SPREAD + 60.0
"""Seconds into an epoch during which lookups also cover the previous epoch:
the re-advertising spread plus a minute for clocks that are behind ours.
After that, a previous-epoch record is of someone who left or is chatting."""

GENERAL_LANE = "general"
ADULT_LANE = "adult"
LANES = (GENERAL_LANE, ADULT_LANE)
"""The lanes; "general" unless the user opts in to another."""

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
    lane: str = GENERAL_LANE
    """The lane (``--adult``): the adult lane's keys never meet the general lane's."""
    lang: str = ""
    """The language lane (ISO 639-1, ``discovery/language.py``), "" for the plain keys."""
    questions: bool = False
    """A key of the question lane: strangers who discuss questions (``node/question.py``)."""

    def __post_init__(self) -> None:
        if self.lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, got {self.lane!r}")
        if not is_lang(self.lang):
            raise ValueError(f"lang must be a two-letter code or '', got {self.lang!r}")
        if self.questions is not False and (self.questions is not True or self.lang):
            raise ValueError("a question key is a boolean, and has no language")
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
        space = _NAMESPACE if self.lane == GENERAL_LANE else f"{_NAMESPACE}/lane/{self.lane}"
        if self.questions:
            space = f"{space}/questions"
        elif self.lang:
            space = f"{space}/lang/{self.lang}"
        if self.interest is None:
            return f"{space}/anyone/{self.epoch}/{self.shard}"
        return f"{space}/interest/{self.interest}/{self.epoch}/{self.shard}"

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
    interests: tuple[str, ...], *, anyone: bool, now: float, shard: int = HOME_SHARD,
    lane: str = GENERAL_LANE,
    lang: str = "", questions: bool = False,
) -> list[TopicKey]:
    """Keys to announce ourselves on at ``now``: the current epoch, home and ``shard``.

    Ordered by topic, then shard (home first).  With a language, the lane's
    keys come first, and the plain keys follow when ``anyone`` (strangers of
    any language may then find us, as after Omegle's random fallback).
    """
    epoch = epoch_at(now)
    topics: list[str | None] = list(interests)
    if anyone:
        topics.append(None)
    shards = [HOME_SHARD] if shard == HOME_SHARD else [HOME_SHARD, shard]
    langs = [lang, ""] if lang and anyone else [lang]
    keys = [TopicKey(topic, epoch, each, lane, lang=code) for code in langs for topic in topics
            for each in shards]
    if questions:  # also listed as someone who discusses questions (after the rest)
        keys += [TopicKey(topic, epoch, each, lane, questions=True) for topic in topics
                 for each in shards]
    return keys


def lookup_epochs(now: float) -> list[int]:
    """Epochs to search at ``now``: the current one, and the previous one early on."""
    epoch = epoch_at(now)
    if epoch > 0 and now - epoch * EPOCH_SECONDS < PREVIOUS_EPOCH_WINDOW:
        return [epoch, epoch - 1]
    return [epoch]


def search_rounds(
    interests: tuple[str, ...],
    *,
    anyone: bool,
    now: float,
    probe: int | None,
    hot: Mapping[str | None, bool] | None = None,
    lane: str = GENERAL_LANE,
    lang: str = "",
    questions: bool = False,
) -> list[list[TopicKey]]:
    """The keys of one search, round by round (a round is walked only if the
    rounds before it found nobody to propose to).

    Without a ``probe`` shard (``None``: small networks) every topic is looked
    up at home, in one round. With one (large networks) it depends on what
    ``hot`` says of the topic (``None`` is the anyone key), as learned from
    the last walk of its home key:

    * hot (home answered with a full page): the probe shard first, home in a
      second round, so a hot topic's searches are spread over the shards;
    * not hot: home only (a rare topic is found there at once);
    * not known yet: home and the probe together, in the first round.

    With a language, the rounds of its lane come first; when ``anyone`` (the
    random phase) the same rounds on the plain keys follow, so a stranger of
    another language is met only if nobody of ours was found.

    ``questions``: the question lane's keys only (someone asking a question
    looks for strangers who discuss them, ``node/question.py``).
    """
    if questions:
        return _rounds(interests, anyone=anyone, now=now, probe=probe, hot=hot, lane=lane,
                       lang="", questions=True)
    if lang:
        ours = _rounds(interests, anyone=anyone, now=now, probe=probe, hot=hot, lane=lane,
                       lang=lang)
        return ours + (_rounds(interests, anyone=True, now=now, probe=probe, hot=hot, lane=lane,
                               lang="") if anyone else [])
    return _rounds(interests, anyone=anyone, now=now, probe=probe, hot=hot, lane=lane, lang="")


def first_search_keys(interests: tuple[str, ...], *, now: float, lane: str = GENERAL_LANE,
                      lang: str = "", asking: bool = False) -> list[bytes]:
    """The keys a node's first search walks first: its first round on the home shard, as
    ``search.SearchPlanner`` plans it (interests first: the anyone key only without any).

    The servers closest to them hold the records that search looks for; a launch
    connects to the nearest it knows before it searches (``strangers.preconnect``,
    ``frontdoor.ServerCache.first_tries``), so its first walk starts on open
    connections. Canonical interests (``interests.normalize_interests``).
    """
    rounds = search_rounds(interests, anyone=not interests, now=now, probe=None, lane=lane,
                           lang=lang, questions=asking)
    return [key.multihash for key in rounds[0]]


def _rounds(interests: tuple[str, ...], *, anyone: bool, now: float, probe: int | None,
            hot: Mapping[str | None, bool] | None, lane: str, lang: str,
            questions: bool = False) -> list[list[TopicKey]]:
    topics: list[str | None] = list(interests)
    if anyone:
        topics.append(None)
    if probe is not None and (not _is_int(probe) or probe == HOME_SHARD
                              or not 0 <= probe < SHARDS):
        raise ValueError(f"probe shard must be in [1, {SHARDS}), got {probe!r}")
    first: list[TopicKey] = []
    second: list[TopicKey] = []
    for topic in topics:
        home = [TopicKey(topic, epoch, HOME_SHARD, lane, lang, questions)
                for epoch in lookup_epochs(now)]
        if probe is None:
            first += home
            continue
        probed = [TopicKey(topic, epoch, probe, lane, lang, questions) for epoch in lookup_epochs(now)]
        known = (hot or {}).get(topic)
        if known is None:
            first += probed + home
        elif known:
            first += probed
            second += home
        else:
            first += home
    return [first, second] if second else [first]


def draw_shard(rng: Random) -> int:
    """The shard a search advertises on besides home, and probes first (not home)."""
    return int(rng.randrange(HOME_SHARD + 1, SHARDS))
