"""Reports with proof: build a signed report of a stranger's texts, and verify one (pure).

A report (``docs/protocol.md`` §6.11.3) is one JSON document::

    {"format": "strangers-report/1",
     "created": 1764500000,                 # Unix seconds, when the report was made
     "reason": "...",                       # the reporter's words, may be ""
     "match_id": "<32 hex>",                # the chat
     "stranger": {"peer_id": "12D3KooW...", "public_key": "<64 hex>"},
     "reporter": {"peer_id": "12D3KooW...", "public_key": "<64 hex>"},
     "messages": [{"seq": 1, "id": 1, "text": "...",
                   "key": "<64 hex>", "signature": "<128 hex>"}, ...],
     "signature": "<128 hex>"}

Each message is one of the stranger's texts with its franking
(:mod:`strangers.crypto.franking`): the stranger's own signature proves it
wrote that text, in that chat, as its ``seq``-th text.  ``messages`` is a run
of consecutive ``seq`` numbers (the latest texts the reporter kept).  The
reporter signs the whole document: ``signature`` is its Ed25519 signature over
``REPORT_LABEL`` followed by the document without ``signature`` in canonical
JSON (RFC 8785: keys sorted, no whitespace, UTF-8).

:func:`verify_report` says why a report is not intact: a text edited or added
(its franking fails), a text removed (a gap in ``seq``) or reordered, a
field changed after the reporter signed.  What it cannot tell: whether the
reporter left out texts before the first or after the last one it kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.franking import MAX_SEQ, Franking, verify_franking
from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.crypto.primitives import ed25519_sign, ed25519_verify
from strangers.errors import CryptoError, StrangersError

__all__ = [
    "FORMAT",
    "MAX_MESSAGES",
    "MAX_REASON",
    "REPORT_LABEL",
    "ReportError",
    "ReportedText",
    "VerifiedReport",
    "build_report",
    "canonical",
    "verify_report",
]

FORMAT: Final = "strangers-report/1"
REPORT_LABEL: Final = b"strangers/v1/report\x00"
MAX_MESSAGES: Final = 1000
MAX_REASON: Final = 1000
"""Longest reason, in characters."""
MAX_TEXT: Final = 16384
_MAX_ID: Final = 2**53
_KEYS: Final = {"format", "created", "reason", "match_id", "stranger", "reporter", "messages",
                "signature"}
_PARTY_KEYS: Final = {"peer_id", "public_key"}
_MESSAGE_KEYS: Final = {"seq", "id", "text", "key", "signature"}


class ReportError(StrangersError):
    """A report that is not intact; the message says why (``strangers verify-report``)."""


@dataclass(frozen=True)
class ReportedText:
    """One of the stranger's texts in a report, with its franking."""

    seq: int
    id: int
    text: str
    franking: Franking


@dataclass(frozen=True)
class VerifiedReport:
    """What an intact report shows."""

    stranger: str
    reporter: str
    reason: str
    created: int
    match_id: bytes
    messages: tuple[ReportedText, ...]


def canonical(document: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of a report's fields (ASCII keys, no floats)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _party(public_key: bytes) -> dict[str, str]:
    return {"peer_id": peer_id_to_text(ed25519_peer_id(public_key)),
            "public_key": public_key.hex()}


def build_report(
    *,
    reporter: Ed25519PrivateKey,
    stranger_key: bytes,
    match_id: bytes,
    texts: Iterable[ReportedText],
    reason: str,
    created: int,
) -> dict[str, Any]:
    """The signed report of ``texts`` (the stranger's, consecutive, oldest first)."""
    messages = list(texts)[-MAX_MESSAGES:]
    if len(reason) > MAX_REASON:
        reason = reason[:MAX_REASON]
    body: dict[str, Any] = {
        "format": FORMAT,
        "created": int(created),
        "reason": reason,
        "match_id": match_id.hex(),
        "stranger": _party(stranger_key),
        "reporter": _party(reporter.public_key().public_bytes_raw()),
        "messages": [{"seq": item.seq, "id": item.id, "text": item.text,
                      "key": item.franking.key.hex(),
                      "signature": item.franking.signature.hex()} for item in messages],
    }
    signature = ed25519_sign(reporter, REPORT_LABEL + canonical(body))
    return body | {"signature": signature.hex()}


# --- verification -------------------------------------------------------------------------


def _hex(value: object, size: int, what: str) -> bytes:
    if type(value) is not str or len(value) != 2 * size:
        raise ReportError(f"{what} must be {size} bytes in hex, not {value!r:.80}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ReportError(f"{what} is not hex: {value!r:.80}") from None


def _int(value: object, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ReportError(f"{what} must be an integer from {low} to {high}, not {value!r:.80}")
    return value


def _keys(obj: object, expected: set[str], what: str) -> dict[str, Any]:
    if type(obj) is not dict or set(obj) != expected:
        found = sorted(obj) if type(obj) is dict else type(obj).__name__
        raise ReportError(f"{what} must have the fields {sorted(expected)}, not {found!r:.120}")
    return obj


def _party_key(obj: object, who: str) -> tuple[str, bytes]:
    party = _keys(obj, _PARTY_KEYS, f"the {who}")
    key = _hex(party["public_key"], 32, f"the {who}'s public key")
    try:
        expected = peer_id_to_text(ed25519_peer_id(key))
    except CryptoError as exc:  # pragma: no cover - 32 bytes always make a peer id
        raise ReportError(str(exc)) from None
    if party["peer_id"] != expected:
        raise ReportError(f"the {who}'s peer id {party['peer_id']!r:.80} does not belong to"
                          f" its public key (that is {expected})")
    return expected, key


def _message(obj: object, position: int) -> ReportedText:
    item = _keys(obj, _MESSAGE_KEYS, f"message {position}")
    seq = _int(item["seq"], 1, MAX_SEQ, f"message {position}'s seq")
    text = item["text"]
    if type(text) is not str or not text or len(text) > MAX_TEXT:
        raise ReportError(f"message {position}'s text must be 1 to {MAX_TEXT} characters")
    franking = Franking(_hex(item["key"], 32, f"message {position}'s key"),
                        _hex(item["signature"], 64, f"message {position}'s signature"))
    return ReportedText(seq, _int(item["id"], 1, _MAX_ID, f"message {position}'s id"), text,
                        franking)


def verify_report(document: object) -> VerifiedReport:
    """Check a report; returns what it shows, or raises :class:`ReportError` saying why not."""
    doc = _keys(document, _KEYS, "a report")
    if doc["format"] != FORMAT:
        raise ReportError(f"not a {FORMAT} report (format {doc['format']!r:.80})")
    created = _int(doc["created"], 0, 2**53, "created")
    reason = doc["reason"]
    if type(reason) is not str or len(reason) > MAX_REASON:
        raise ReportError(f"the reason must be a string of at most {MAX_REASON} characters")
    match_id = _hex(doc["match_id"], 16, "the match id")
    stranger, stranger_key = _party_key(doc["stranger"], "stranger")
    reporter, reporter_key = _party_key(doc["reporter"], "reporter")
    raw_messages = doc["messages"]
    if type(raw_messages) is not list or len(raw_messages) > MAX_MESSAGES:
        raise ReportError(f"messages must be a list of at most {MAX_MESSAGES}")
    messages = tuple(_message(item, position)
                     for position, item in enumerate(raw_messages, start=1))
    previous: ReportedText | None = None
    for item in messages:
        if previous is not None:
            if item.seq <= previous.seq or item.id <= previous.id:
                raise ReportError(f"the stranger's text {item.seq} comes after text"
                                  f" {previous.seq}: texts were reordered or added twice")
            if item.seq != previous.seq + 1:
                gap = item.seq - previous.seq - 1
                which = (f"text {previous.seq + 1} is" if gap == 1
                         else f"texts {previous.seq + 1} to {item.seq - 1} are")
                raise ReportError(f"the stranger's {which} missing: removed from the report")
        try:
            verify_franking(stranger_key, match_id, item.seq, item.text, item.franking)
        except CryptoError:
            raise ReportError(
                f"the stranger's text {item.seq} (id {item.id}) was edited or added: the"
                f" stranger's franking signature does not match {item.text!r:.60}"
            ) from None
        previous = item
    body = {key: value for key, value in doc.items() if key != "signature"}
    signature = _hex(doc["signature"], 64, "the reporter's signature")
    try:
        ed25519_verify(reporter_key, signature, REPORT_LABEL + canonical(body))
    except CryptoError:
        raise ReportError("the report was changed after the reporter signed it (the reporter's"
                          " signature does not match)") from None
    return VerifiedReport(stranger, reporter, reason, created, match_id, messages)
