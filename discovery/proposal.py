"""The match protocol's messages (``/strangers/match/1.0.0``), pure codec.

One stream carries one proposal: the proposer sends :class:`Propose`, the
candidate answers :class:`Accept` or :class:`Refuse`, and both close.  Each
message is one frame: a 4-byte big-endian length, then a msgpack map of at
most :data:`MAX_PROPOSAL_FRAME` bytes::

    Propose  {"t": "propose", "v": 1, "m": <16-byte match id>, "i": [interest, ...],
              "p": <8-byte identity proof>, "s": [<unix time>, <8-byte nonce>],
              "l": <lane>}
             {"t": "propose", "v": 2, "m": ..., "i": [...], "h": <chat commit frame>}
             (+ "inv": true for an invitation from a lobby, protocol §10.7)
             (+ ? "lang": <language>, ? "q": <question>)
    Accept   {"t": "accept", "m": <match id>, "i": [interest, ...], "p": <identity proof>}
             {"t": "accept", "m": ..., "i": [...], "h": <chat hello_R frame>}
             (+ ? "lang": <language>)
    Refuse   {"t": "refuse", "m": <match id>, "r": "busy" | "crossed" | "not-looking"
                                                  | "no-common-interests" | "other-lane"
                                                  | "no-proof"}

``p`` (the sender's identity proof), ``s`` (the proposal's stamp) and ``l``
(the lane, "general" when absent) are optional on the wire; a node that
demands proofs refuses a proposal without valid ones (``crypto/pow.py``,
docs/protocol.md §5.9), and one in another lane (§3).

Interests are sent in canonical form (see ``interests.py``) and each side
computes the common ones itself; a peer's list is re-normalised on receipt
and dropped whole if it is not canonical.  ``"lang"`` (optional, sent only when
the user has one) is the sender's language, an ISO 639-1 code
(``language.py``): shown to the other user, never a reason to refuse.
``"q"`` (optional, Propose only) is a question: the proposer asks it and
will watch, relaying between two strangers (``node/question.py``); only a
node that discusses questions accepts it.

``h`` (version 2) carries the chat handshake's first frames, so that they
ride with the proposal and its answer instead of costing a round trip on
the chat stream (docs/protocol.md §5.2, §6.2): the proposer's commit in
``Propose``, the responder's hello in ``Accept`` (only in answer to a
proposal that carried a commit). They are chat frames as the chat stream
would carry them, opaque here: :mod:`strangers.crypto.session` checks them.
A version-1 proposal, or an accept without ``h``, leaves the whole handshake
on the chat stream.

Each message type has its required keys and its optional ones
(:data:`_REQUIRED`, :data:`_OPTIONAL`): a new field is one entry there, one
in the dataclass and one in :func:`encode`/:func:`decode`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

import msgpack

from strangers.crypto.pow import NONCE_BYTES, Stamp
from strangers.crypto.wire import brief, unpack_map
from strangers.errors import CryptoError, LocalProtocolError, RemoteProtocolError, StrangersError

from .interests import MAX_INTERESTS, normalize_interest
from .language import is_lang
from .matcher import Refusal
from .topics import GENERAL_LANE, LANES

MAX_PROPOSAL_FRAME = 8192
"""Largest frame body. The biggest valid message, a Propose with MAX_INTERESTS
interests of MAX_INTEREST_CHARS four-byte characters, packs to 4183 bytes."""
MATCH_ID_BYTES = 16
PROTOCOL_VERSION = 2
"""A proposal with the chat commit in ``h``; version 1 (without) is still accepted."""
VERSIONS = (1, 2)
MAX_HANDSHAKE_BYTES = 1024
"""Largest ``h``: a chat commit frame is ~70 bytes, a hello ~190."""
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


def _check_handshake(handshake: object, error: type[StrangersError]) -> bytes:
    if not isinstance(handshake, bytes) or len(handshake) > MAX_HANDSHAKE_BYTES:
        raise error(f"handshake frames must be at most {MAX_HANDSHAKE_BYTES} bytes, got {brief(handshake)}")
    return handshake


@dataclass(frozen=True)
class _WithInterests:
    match_id: bytes
    interests: tuple[str, ...]
    handshake: bytes = b""
    """Chat handshake frames riding with the message (empty: none)."""
    lang: str = ""
    """The sender's language (ISO 639-1), "" if it did not say."""

    def __post_init__(self) -> None:
        _check_match_id(self.match_id, LocalProtocolError)
        _check_interests(self.interests, LocalProtocolError)
        _check_handshake(self.handshake, LocalProtocolError)
        if not is_lang(self.lang):
            raise LocalProtocolError(f"bad language {self.lang!r}")


def _check_proof(proof: object, error: type[StrangersError]) -> bytes | None:
    if proof is None:
        return None
    if not isinstance(proof, bytes) or len(proof) != NONCE_BYTES:
        raise error(f"identity proof must be {NONCE_BYTES} bytes, got {brief(proof)}")
    return proof


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
    """'Shall we chat?', with the proposer's interests, identity proof, stamp and lane
    (and its chat commit, and a question in question mode).

    ``invite``: an invitation from a lobby member (protocol §10.7):
    the candidate's *user* decides, so the answer may take up to a minute.
    Sent as ``"inv": true``.
    """

    proof: bytes | None = None
    stamp: Stamp | None = None
    lane: str = GENERAL_LANE
    invite: bool = False
    question: str = ""
    """Someone asks this and will watch the chat (protocol §5.11); "" for a normal chat."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_proof(self.proof, LocalProtocolError)
        if self.stamp is not None and not isinstance(self.stamp, Stamp):
            raise LocalProtocolError(f"bad stamp {self.stamp!r}")
        if self.lane not in LANES:
            raise LocalProtocolError(f"unknown lane {self.lane!r}")
        check_question(self.question, LocalProtocolError)


@dataclass(frozen=True)
class Accept(_WithInterests):
    """'Yes', with the candidate's interests and identity proof (and its chat hello)."""

    proof: bytes | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_proof(self.proof, LocalProtocolError)


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
    body: dict[str, object]
    if isinstance(message, Propose):
        body = {"t": "propose", "v": 2 if message.handshake else 1, "m": message.match_id,
                "i": list(message.interests)}
        if message.invite:
            body["inv"] = True
        if message.proof is not None:
            body["p"] = message.proof
        if message.stamp is not None:
            body["s"] = message.stamp.to_wire()
        if message.lane != GENERAL_LANE:
            body["l"] = message.lane
        if message.lang:
            body["lang"] = message.lang
        if message.question:
            body["q"] = message.question
    elif isinstance(message, Accept):
        body = {"t": "accept", "m": message.match_id, "i": list(message.interests)}
        if message.proof is not None:
            body["p"] = message.proof
        if message.lang:
            body["lang"] = message.lang
    elif isinstance(message, Refuse):
        body = {"t": "refuse", "m": message.match_id, "r": message.reason.value}
    else:
        raise LocalProtocolError(f"not a proposal message: {message!r}")
    if isinstance(message, (Propose, Accept)) and message.handshake:
        body["h"] = message.handshake
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


_REQUIRED = {
    "propose": {"t", "v", "m", "i"},
    "accept": {"t", "m", "i"},
    "refuse": {"t", "m", "r"},
}
_OPTIONAL: dict[str, set[str]] = {
    # h: version 2 only; inv: an invitation from a lobby; lang: the sender's language;
    # q: a question (question mode); p, s, l: identity proof, stamp, lane
    "propose": {"h", "inv", "p", "s", "l", "lang", "q"},
    "accept": {"h", "p", "lang"},
    "refuse": set(),
}


def _remote_lang(obj: dict[object, object]) -> str:
    value = obj.get("lang", "")
    if not is_lang(value) or ("lang" in obj and not value):
        raise RemoteProtocolError(f"bad language {brief(value)}")
    return str(value)


def decode(body: bytes) -> ProposalMessage:
    """Decode one frame body (without its prefix); RemoteProtocolError if invalid."""
    obj = unpack_map(
        body, what="proposal frame", max_bytes=MAX_PROPOSAL_FRAME, max_container=64, max_map=12
    )
    if not isinstance(obj.get("t"), str) or obj["t"] not in _REQUIRED:
        raise RemoteProtocolError(f"unknown proposal frame {brief(obj)}")
    kind = obj["t"]
    keys = set(obj)
    if kind == "propose" and "inv" in obj and obj["inv"] is not True:
        raise RemoteProtocolError(f"proposal frame with a bad invitation flag {brief(obj['inv'])}")
    if not _REQUIRED[kind] <= keys <= _REQUIRED[kind] | _OPTIONAL[kind]:
        raise RemoteProtocolError(
            f"proposal frame {kind!r} has keys {brief(sorted(obj, key=repr))}"
        )
    match_id = _check_match_id(obj["m"], RemoteProtocolError)
    handshake = _check_handshake(obj.get("h", b""), RemoteProtocolError)
    if "h" in obj and not handshake:
        raise RemoteProtocolError("empty handshake frames")
    if kind == "propose":
        version = obj["v"]
        if type(version) is not int or version not in VERSIONS:  # not True, not 1.0
            raise RemoteProtocolError(f"unsupported proposal version {brief(version)}")
        if (version == 2) != ("h" in obj):
            raise RemoteProtocolError(f"a version {version} proposal {'without' if version == 2 else 'with'} h")
        proof = _check_proof(obj.get("p"), RemoteProtocolError)
        stamp = None
        if "s" in obj:
            try:
                stamp = Stamp.from_wire(obj["s"])
            except CryptoError:
                raise RemoteProtocolError(f"bad stamp {brief(obj['s'])}") from None
        lane = obj.get("l", GENERAL_LANE)
        if not isinstance(lane, str) or lane not in LANES:
            raise RemoteProtocolError(f"unknown lane {brief(lane)}")
        question = check_question(obj.get("q", ""), RemoteProtocolError)
        if "q" in obj and not question:
            raise RemoteProtocolError("an empty question")
        return Propose(match_id, _remote_interests(obj["i"]), handshake, _remote_lang(obj),
                       proof=proof, stamp=stamp, lane=lane, invite="inv" in obj, question=question)
    if kind == "accept":
        return Accept(match_id, _remote_interests(obj["i"]), handshake, _remote_lang(obj),
                      proof=_check_proof(obj.get("p"), RemoteProtocolError))
    try:
        reason = Refusal(obj["r"])
    except (ValueError, TypeError):
        raise RemoteProtocolError(f"unknown refusal reason {brief(obj['r'])}") from None
    return Refuse(match_id, reason)
