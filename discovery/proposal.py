"""The match protocol's messages (``/strangers/match/1.0.0``), pure codec.

One stream carries one proposal: the proposer sends :class:`Propose`, the
candidate answers :class:`Accept` or :class:`Refuse`, and both close.  Each
message is one frame: a 4-byte big-endian length, then a msgpack map of at
most :data:`MAX_PROPOSAL_FRAME` bytes::

    Propose  {"t": "propose", "v": 1, "m": <16-byte match id>, "i": [interest, ...],
              ? "l": <language>, ? "q": <question>}
    Accept   {"t": "accept", "m": <match id>, "i": [interest, ...], ? "l": <language>}
    Refuse   {"t": "refuse", "m": <match id>, "r": "busy" | "crossed" | "not-looking"
                                                  | "no-common-interests"}

Interests are sent in canonical form (see ``interests.py``) and each side
computes the common ones itself; a peer's list is re-normalised on receipt
and dropped whole if it is not canonical.  ``"l"`` (optional, sent only when
the user has one) is the sender's language, an ISO 639-1 code
(``language.py``): shown to the other user, never a reason to refuse.
``"q"`` (optional, Propose only) is a question: the proposer asks it and
will watch, relaying between two strangers (``node/question.py``); only a
node that discusses questions accepts it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

import msgpack

from strangers.crypto.wire import brief, unpack_map
from strangers.errors import LocalProtocolError, RemoteProtocolError, StrangersError

from .interests import MAX_INTERESTS, normalize_interest
from .language import is_lang
from .matcher import Refusal

MAX_PROPOSAL_FRAME = 8192
"""Largest frame body. The biggest valid message, a Propose with MAX_INTERESTS
interests of MAX_INTEREST_CHARS four-byte characters, packs to 4183 bytes."""
MATCH_ID_BYTES = 16
PROTOCOL_VERSION = 1
_LENGTH = struct.Struct(">I")


def _check_interests(interests: tuple[str, ...], error: type[StrangersError]) -> None:
    if not isinstance(interests, tuple) or len(interests) > MAX_INTERESTS:
        raise error(f"bad interest list {brief(interests)}")
    for item in interests:
        try:
            canonical = normalize_interest(item)
        except StrangersError:
            raise error(f"bad interest {brief(item)}") from None
        if canonical != item:
            raise error(f"interest {brief(item)} is not in canonical form")


def _check_match_id(match_id: object, error: type[StrangersError]) -> bytes:
    if not isinstance(match_id, bytes) or len(match_id) != MATCH_ID_BYTES:
        raise error(f"match id must be {MATCH_ID_BYTES} bytes, got {brief(match_id)}")
    return match_id


@dataclass(frozen=True)
class _WithInterests:
    match_id: bytes
    interests: tuple[str, ...]
    lang: str = ""
    """The sender's language (ISO 639-1), "" if it did not say."""

    def __post_init__(self) -> None:
        _check_match_id(self.match_id, LocalProtocolError)
        _check_interests(self.interests, LocalProtocolError)
        if not is_lang(self.lang):
            raise LocalProtocolError(f"bad language {self.lang!r}")


MAX_QUESTION_CHARS = 300
"""Longest question (``strangers ask``), in characters."""


def check_question(question: object, error: type[StrangersError]) -> str:
    """A question as sent: 1..300 printable characters, or "" for none."""
    if not isinstance(question, str) or len(question) > MAX_QUESTION_CHARS or (
            question and (not question.strip() or not question.isprintable())):
        raise error(f"a question is 1 to {MAX_QUESTION_CHARS} printable characters, got"
                    f" {brief(question)}")
    return question


@dataclass(frozen=True)
class Propose(_WithInterests):
    """'Shall we chat?', with the proposer's interests (and a question, in question mode)."""

    question: str = ""
    """Someone asks this and will watch the chat (protocol §5.10); "" for a normal chat."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_question(self.question, LocalProtocolError)


@dataclass(frozen=True)
class Accept(_WithInterests):
    """'Yes', with the candidate's interests."""


@dataclass(frozen=True)
class Refuse:
    """'No', and why."""

    match_id: bytes
    reason: Refusal

    def __post_init__(self) -> None:
        _check_match_id(self.match_id, LocalProtocolError)
        if not isinstance(self.reason, Refusal):
            raise LocalProtocolError(f"bad refusal reason {self.reason!r}")


ProposalMessage = Union[Propose, Accept, Refuse]


def encode(message: ProposalMessage) -> bytes:
    """One frame: length prefix + msgpack body."""
    if isinstance(message, Propose):
        body = {"t": "propose", "v": PROTOCOL_VERSION, "m": message.match_id,
                "i": list(message.interests)}
        if message.lang:
            body["l"] = message.lang
        if message.question:
            body["q"] = message.question
    elif isinstance(message, Accept):
        body = {"t": "accept", "m": message.match_id, "i": list(message.interests)}
        if message.lang:
            body["l"] = message.lang
    elif isinstance(message, Refuse):
        body = {"t": "refuse", "m": message.match_id, "r": message.reason.value}
    else:
        raise LocalProtocolError(f"not a proposal message: {message!r}")
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return _LENGTH.pack(len(packed)) + packed


def frame_length(prefix: bytes) -> int:
    """Length announced by a 4-byte prefix; RemoteProtocolError if out of bounds."""
    if len(prefix) != _LENGTH.size:
        raise RemoteProtocolError(f"truncated length prefix {prefix!r}")
    length: int = _LENGTH.unpack(prefix)[0]
    if not 0 < length <= MAX_PROPOSAL_FRAME:
        raise RemoteProtocolError(
            f"proposal frame of {length} bytes (1..{MAX_PROPOSAL_FRAME} allowed)"
        )
    return length


def _remote_interests(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RemoteProtocolError(f"bad interest list {brief(value)}")
    interests = tuple(value)
    _check_interests(interests, RemoteProtocolError)
    return interests


_KEYS = {
    "propose": {"t", "v", "m", "i"},
    "accept": {"t", "m", "i"},
    "refuse": {"t", "m", "r"},
}
_OPTIONAL = {
    "propose": {"l", "q"},
    "accept": {"l"},
    "refuse": set(),
}


def _remote_lang(obj: dict[object, object]) -> str:
    value = obj.get("l", "")
    if not is_lang(value) or ("l" in obj and not value):
        raise RemoteProtocolError(f"bad language {brief(value)}")
    return str(value)


def decode(body: bytes) -> ProposalMessage:
    """Decode one frame body (without its prefix); RemoteProtocolError if invalid."""
    obj = unpack_map(
        body, what="proposal frame", max_bytes=MAX_PROPOSAL_FRAME, max_container=64, max_map=8
    )
    if not isinstance(obj.get("t"), str) or obj["t"] not in _KEYS:
        raise RemoteProtocolError(f"unknown proposal frame {brief(obj)}")
    kind = obj["t"]
    if not _KEYS[kind] <= set(obj) <= _KEYS[kind] | _OPTIONAL[kind]:
        raise RemoteProtocolError(
            f"proposal frame {kind!r} has keys {brief(sorted(obj, key=repr))}"
        )
    match_id = _check_match_id(obj["m"], RemoteProtocolError)
    if kind == "propose":
        if type(obj["v"]) is not int or obj["v"] != PROTOCOL_VERSION:  # not True, not 1.0
            raise RemoteProtocolError(f"unsupported proposal version {brief(obj['v'])}")
        question = check_question(obj.get("q", ""), RemoteProtocolError)
        if "q" in obj and not question:
            raise RemoteProtocolError("an empty question")
        return Propose(match_id, _remote_interests(obj["i"]), _remote_lang(obj), question)
    if kind == "accept":
        return Accept(match_id, _remote_interests(obj["i"]), _remote_lang(obj))
    try:
        reason = Refusal(obj["r"])
    except (ValueError, TypeError):
        raise RemoteProtocolError(f"unknown refusal reason {brief(obj['r'])}") from None
    return Refuse(match_id, reason)
