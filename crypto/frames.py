"""The chat wire format: length-prefixed msgpack frames and the messages inside them.

A chat stream carries *frames*.  Each frame is::

    +----------------------------+---------------------------+
    | N: 4-byte big-endian uint  | N bytes: one msgpack map  |
    +----------------------------+---------------------------+

with ``1 <= N <= MAX_FRAME`` (65536).  A length of 0 or above ``MAX_FRAME`` is a
protocol error; nothing in the map may follow the one top-level msgpack object.

Every map is decoded strictly (:func:`strangers.crypto.wire.unpack_map`):
string keys only (``strict_map_key``), no duplicate keys, no ext types
(timestamps included), str as UTF-8 (invalid UTF-8 and lone surrogates are
rejected), bin for bytes, containers and strings bounded, nesting at most two
levels deep, and the exact key set of its type, no more and no less.  Integers
must be msgpack integers: ``true``/``false`` are never accepted where an
integer is expected, nor an integer where a boolean is.

Outer frames travel in clear; key ``"t"`` names the type:

``{"t": "commit", "v": 2, "m": bin(16), "c": bin(32)}``
    The initiator's commitment to its hello
    (:class:`strangers.crypto.handshake.Commit`): handshake version (always
    2), match id, SHA-256 commitment.
``{"t": "hello", "v": 2, "m": bin(16), "e": bin(32), "s": bin(64)}``
    A handshake hello (:class:`strangers.crypto.handshake.Hello`): version,
    match id, ephemeral X25519 key, Ed25519 signature.
``{"t": "finished", "f": bin(32)}``
    Key confirmation (:class:`strangers.crypto.handshake.Finished`): the
    HMAC of the handshake transcript.
``{"t": "msg", "h": bin(40), "c": bin(16..65536)}``
    One Double Ratchet message (:class:`Envelope`): the 40-byte ratchet
    header (``Header.to_bytes()``) and the ciphertext, whose associated data
    binds the header and the session.
``{"t": "move", "m": bin(16)}``
    The opening of a *move stream* (:class:`Move`): the first frame of a new
    chat stream that carries an established chat (named by its match id) on
    from then on, e.g. once a direct connection replaced a relayed one.  It
    never appears inside a chat stream (``docs/protocol.md`` §6.9).

The plaintext of a ``"msg"`` frame is one *inner* message, padded::

    +----------------------+-------------------+------------------------+
    | L: 2-byte BE uint    | L bytes: msgpack  | zero bytes             |
    +----------------------+-------------------+------------------------+

The padded plaintext is the smallest positive multiple of ``PAD_BLOCK`` (64)
bytes that holds ``2 + L`` bytes, so an observer of the ciphertext learns a
message's length only to within 64 bytes.  A padded plaintext whose length is
not that exact size, or whose padding is not all zero, is rejected.

Inner messages (:data:`InnerMessage`), msgpack maps keyed by ``"t"``:

=====================================  ======================================
wire                                   meaning
=====================================  ======================================
``{"t": "ready"}``                     :class:`Ready`: the initiator's first
                                       message (lets the responder send)
``{"t": "text", "id": I, "x": S,``     :class:`Text`: ``1 <= I <= 2**53``,
``"k": K, "g": G}``                    ``S`` 1..16384 bytes of UTF-8, ``K``
                                       bin(32) franking key, ``G`` bin(64)
                                       franking signature (§6.11,
                                       :mod:`strangers.crypto.franking`)
``{"t": "typing", "a": B}``            :class:`Typing`: ``B`` a boolean
``{"t": "delivered", "id": I}``        :class:`Delivered`: text ``I`` arrived
``{"t": "bye", "r": R}``               :class:`Bye`: ``R`` one of ``"quit"``,
                                       ``"next"``, ``"error"``, ``"timeout"``
``{"t": "ping", "n": N}``              :class:`Ping`: ``0 <= N < 2**32``
``{"t": "pong", "n": N}``              :class:`Pong`: answers the ping ``N``
``{"t": "moved"}``                     :class:`Moved`: the sender's last
                                       message on this stream; the chat goes
                                       on on the move stream
``{"t": "keep"}``                      :class:`Keep`: the sender offers to
                                       keep in touch (reveals nothing else)
``{"t": "contact", "p": P, "s": S}``   :class:`Contact`: sent only once both
                                       sent ``keep``: ``P`` bin(32), the
                                       sender's new long-term Ed25519 public
                                       key for this contact, ``S`` bin(32),
                                       its half of the one-time secret
                                       (``docs/protocol.md`` §6.12)
=====================================  ======================================

Validation errors in our own values raise
:class:`~strangers.errors.LocalProtocolError`; anything wrong in bytes from the
peer raises :class:`~strangers.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

import msgpack

from strangers.errors import CryptoError, LocalProtocolError, RemoteProtocolError

from .franking import Franking
from .handshake import (
    COMMITMENT_SIZE,
    FINISHED_SIZE,
    HELLO_VERSION,
    MATCH_ID_SIZE,
    Commit,
    Finished,
    Hello,
)
from .primitives import AEAD_TAG_SIZE, ED25519_SIGNATURE_SIZE, X25519_KEY_SIZE
from .ratchet import HEADER_SIZE
from .wire import brief, unpack_map

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAME",
    "MAX_ID",
    "MAX_TEXT_BYTES",
    "MIN_CIPHERTEXT",
    "PAD_BLOCK",
    "Bye",
    "Move",
    "Moved",
    "ByeReason",
    "Commit",
    "Delivered",
    "Envelope",
    "Finished",
    "Frame",
    "FrameDecoder",
    "HandshakeFrame",
    "Hello",
    "InnerMessage",
    "Keep",
    "Contact",
    "Ping",
    "Pong",
    "Ready",
    "Text",
    "Typing",
    "decode_inner",
    "encode_frame",
    "encode_inner",
]

#: Largest msgpack body of one frame, in bytes (the length prefix excluded).
MAX_FRAME: Final = 65536
#: Smallest ciphertext: the 16-byte authentication tag of an empty plaintext.
MIN_CIPHERTEXT: Final = AEAD_TAG_SIZE
#: Longest text message, in UTF-8 bytes.
MAX_TEXT_BYTES: Final = 16384
#: Largest text or delivery id (the largest integer a JSON number holds exactly).
MAX_ID: Final = 2**53
#: Padded plaintexts are a multiple of this many bytes.
PAD_BLOCK: Final = 64

_T = TypeVar("_T")
_PREFIX = struct.Struct(">I")
_PAD_PREFIX = struct.Struct(">H")
#: Bound on msgpack maps and arrays: no valid map has more than 5 keys, none holds an array.
_MAX_CONTAINER = 8
_MAX_PING = 2**32 - 1


# --- inner messages -----------------------------------------------------------------


def _check_int(value: object, name: str, low: int, high: int) -> None:
    # ``type(...) is int`` on purpose: msgpack's true is a bool, and bool is an int.
    if type(value) is not int or not low <= value <= high:
        raise LocalProtocolError(
            f"{name} must be an integer from {low} to {high}, not {brief(value)}"
        )


class ByeReason(enum.StrEnum):
    """Why a chat ended; each member equals its wire string."""

    #: The user left strangers.
    QUIT = "quit"
    #: The user wants to talk to someone else.
    NEXT = "next"
    #: Something failed on the sender's side.
    ERROR = "error"
    #: The sender heard nothing for too long.
    TIMEOUT = "timeout"


_BYE_REASONS = frozenset(member.value for member in ByeReason)


@dataclass(frozen=True)
class Ready:
    """The initiator's first encrypted message; after it the responder may send."""


@dataclass(frozen=True)
class Text:
    """A chat message; ``id`` (1..2**53) is echoed back in :class:`Delivered`.

    ``franking`` is the sender's evidence (§6.11): the session adds it to the
    texts it sends and checks it on those it receives; a text goes on the wire
    only franked.  It takes no part in equality.
    """

    id: int
    text: str
    franking: Franking | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_int(self.id, "a text id", 1, MAX_ID)
        if type(self.text) is not str or not self.text:
            raise LocalProtocolError(f"a text must be a non-empty string, not {brief(self.text)}")
        try:
            size = len(self.text.encode("utf-8"))
        except UnicodeEncodeError:
            raise LocalProtocolError(
                f"a text must be valid Unicode (no lone surrogates), not {brief(self.text)}"
            ) from None
        if size > MAX_TEXT_BYTES:
            raise LocalProtocolError(
                f"a text may hold at most {MAX_TEXT_BYTES} bytes of UTF-8, not {size}"
            )
        if self.franking is not None and type(self.franking) is not Franking:
            raise LocalProtocolError(f"a text's franking must be a Franking, not"
                                     f" {brief(self.franking)}")


@dataclass(frozen=True)
class Typing:
    """The sender started (``active=True``) or stopped typing."""

    active: bool

    def __post_init__(self) -> None:
        if type(self.active) is not bool:
            raise LocalProtocolError(f"typing must be true or false, not {brief(self.active)}")


@dataclass(frozen=True)
class Delivered:
    """The text with this ``id`` reached the sender of this message."""

    id: int

    def __post_init__(self) -> None:
        _check_int(self.id, "a delivered id", 1, MAX_ID)


@dataclass(frozen=True)
class Bye:
    """The sender ends the chat; ``reason`` is a :class:`ByeReason` (or its string)."""

    reason: ByeReason

    def __post_init__(self) -> None:
        if type(self.reason) is not ByeReason:
            if type(self.reason) is not str or self.reason not in _BYE_REASONS:
                choices = ", ".join(repr(member.value) for member in ByeReason)
                raise LocalProtocolError(
                    f"a bye reason must be one of {choices}, not {brief(self.reason)}"
                )
            object.__setattr__(self, "reason", ByeReason(self.reason))


@dataclass(frozen=True)
class Ping:
    """A keepalive; the peer answers with :class:`Pong` carrying the same ``n``."""

    n: int

    def __post_init__(self) -> None:
        _check_int(self.n, "a ping number", 0, _MAX_PING)


@dataclass(frozen=True)
class Pong:
    """The answer to :class:`Ping` ``n``."""

    n: int

    def __post_init__(self) -> None:
        _check_int(self.n, "a pong number", 0, _MAX_PING)


@dataclass(frozen=True)
class Moved:
    """The sender's last message on this stream: the chat goes on on the move stream."""


@dataclass(frozen=True)
class Keep:
    """The sender would like to keep in touch (``docs/protocol.md`` §6.12)."""


CONTACT_KEY_SIZE: Final = 32
CONTACT_SECRET_SIZE: Final = 32


@dataclass(frozen=True)
class Contact:
    """Both offered to keep in touch: the sender's long-term key and half of the secret."""

    public_key: bytes
    secret: bytes

    def __post_init__(self) -> None:
        for value, size, name in ((self.public_key, CONTACT_KEY_SIZE, "contact key"),
                                  (self.secret, CONTACT_SECRET_SIZE, "contact secret")):
            if type(value) is not bytes or len(value) != size:
                raise LocalProtocolError(f"a {name} must be {size} bytes, not {brief(value)}")


InnerMessage = Ready | Text | Typing | Delivered | Bye | Ping | Pong | Moved | Keep | Contact
#: The wire form of each inner message: its ``"t"`` and {wire key: field name}.
_INNER_WIRE: dict[type[InnerMessage], tuple[str, dict[str, str]]] = {
    Ready: ("ready", {}),
    Text: ("text", {"id": "id", "x": "text", "k": "franking", "g": "franking"}),
    Typing: ("typing", {"a": "active"}),
    Delivered: ("delivered", {"id": "id"}),
    Bye: ("bye", {"r": "reason"}),
    Ping: ("ping", {"n": "n"}),
    Pong: ("pong", {"n": "n"}),
    Moved: ("moved", {}),
    Keep: ("keep", {}),
    Contact: ("contact", {"p": "public_key", "s": "secret"}),
}
_INNER_TYPES = {kind: cls for cls, (kind, _) in _INNER_WIRE.items()}


# --- outer frames ---------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A ``"msg"`` frame: a ratchet header (40 bytes) and a ciphertext."""

    header: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if type(self.header) is not bytes or len(self.header) != HEADER_SIZE:
            raise LocalProtocolError(
                f"a ratchet header must be {HEADER_SIZE} bytes, not {brief(self.header)}"
            )
        if type(self.ciphertext) is not bytes or not (
            MIN_CIPHERTEXT <= len(self.ciphertext) <= MAX_FRAME
        ):
            raise LocalProtocolError(
                f"a ciphertext must be {MIN_CIPHERTEXT} to {MAX_FRAME} bytes,"
                f" not {brief(self.ciphertext)}"
            )


@dataclass(frozen=True)
class Move:
    """A ``"move"`` frame: the first frame of a move stream, naming the chat's match id."""

    match_id: bytes

    def __post_init__(self) -> None:
        if type(self.match_id) is not bytes or len(self.match_id) != MATCH_ID_SIZE:
            raise LocalProtocolError(
                f"a match id must be {MATCH_ID_SIZE} bytes, not {brief(self.match_id)}"
            )


Frame = Commit | Hello | Finished | Envelope | Move
HandshakeFrame = Commit | Hello | Finished
#: The wire form of each handshake frame: its ``"t"`` and {wire key: (field, name, size)};
#: a size of ``None`` marks the version, an integer that must equal ``HELLO_VERSION``.
_HANDSHAKE_WIRE: dict[type[HandshakeFrame], tuple[str, dict[str, tuple[str, str, int | None]]]] = {
    Commit: ("commit", {
        "v": ("version", "version", None),
        "m": ("match_id", "match id", MATCH_ID_SIZE),
        "c": ("commitment", "commitment", COMMITMENT_SIZE),
    }),
    Hello: ("hello", {
        "v": ("version", "version", None),
        "m": ("match_id", "match id", MATCH_ID_SIZE),
        "e": ("ephemeral", "ephemeral key", X25519_KEY_SIZE),
        "s": ("signature", "signature", ED25519_SIGNATURE_SIZE),
    }),
    Finished: ("finished", {"f": ("mac", "finished MAC", FINISHED_SIZE)}),
}


# --- msgpack --------------------------------------------------------------------------


def _pack(obj: dict[str, Any]) -> bytes:
    return cast(bytes, msgpack.packb(obj, use_bin_type=True))


def _unpack_map(data: bytes, what: str) -> dict[object, object]:
    """Decode one msgpack map from the peer; any failure is a RemoteProtocolError."""
    return unpack_map(data, what=what, max_bytes=MAX_FRAME, max_container=_MAX_CONTAINER)


def _kind(obj: dict[object, object], what: str, kinds: Mapping[str, _T]) -> _T:
    """Return ``kinds[obj["t"]]``; an absent or unknown ``"t"`` is the peer's fault."""
    kind = obj.get("t")
    if type(kind) is not str or kind not in kinds:
        raise RemoteProtocolError(f"the stranger sent a {what} of unknown type {brief(kind)}")
    return kinds[kind]


def _check_keys(obj: dict[object, object], expected: set[str], what: str) -> None:
    if set(obj) != expected:
        raise RemoteProtocolError(
            f"the stranger sent a {what} with keys {brief(sorted(obj, key=repr))};"
            f" expected {sorted(expected)!r}"
        )


# --- frames ---------------------------------------------------------------------------


def encode_frame(frame: Frame) -> bytes:
    """Return ``frame`` as bytes for the stream: length prefix and msgpack map."""
    if type(frame) in _HANDSHAKE_WIRE:
        kind, keys = _HANDSHAKE_WIRE[type(frame)]  # type: ignore[index]
        body: dict[str, Any] = {"t": kind} | {
            key: getattr(frame, attr) for key, (attr, _name, _size) in keys.items()
        }
    elif isinstance(frame, Envelope):
        body = {"t": "msg", "h": frame.header, "c": frame.ciphertext}
    elif isinstance(frame, Move):
        body = {"t": "move", "m": frame.match_id}
    else:
        raise LocalProtocolError(f"cannot encode {brief(frame)} as a frame")
    data = _pack(body)
    if len(data) > MAX_FRAME:
        raise LocalProtocolError(
            f"a frame may hold at most {MAX_FRAME} bytes, not {len(data)}"
        )
    return _PREFIX.pack(len(data)) + data


def _handshake_decoder(cls: type[HandshakeFrame]) -> Callable[[dict[object, object]], Frame]:
    kind, keys = _HANDSHAKE_WIRE[cls]

    def decode(obj: dict[object, object]) -> Frame:
        _check_keys(obj, {"t", *keys}, kind)
        for key, (_attr, name, size) in keys.items():
            value = obj[key]
            if size is None:
                if type(value) is not int or value != HELLO_VERSION:
                    raise RemoteProtocolError(
                        f"the stranger speaks chat protocol version {brief(value)};"
                        f" we speak only version {HELLO_VERSION}:"
                        " one of you needs to upgrade strangers"
                    )
            elif type(value) is not bytes or len(value) != size:
                raise RemoteProtocolError(
                    f"the stranger sent a {kind} whose {name} is not {size} bytes: {brief(value)}"
                )
        fields: dict[str, Any] = {attr: obj[key] for key, (attr, _name, _size) in keys.items()}
        try:
            return cls(**fields)
        except CryptoError as exc:  # pragma: no cover - every field was checked above
            raise RemoteProtocolError(f"the stranger sent a bad {kind}: {exc}") from exc

    return decode


def _decode_envelope(obj: dict[object, object]) -> Envelope:
    _check_keys(obj, {"t", "h", "c"}, "msg frame")
    try:
        return Envelope(header=obj["h"], ciphertext=obj["c"])  # type: ignore[arg-type]
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"the stranger sent a bad msg frame: {exc}") from exc


def _decode_move(obj: dict[object, object]) -> Move:
    _check_keys(obj, {"t", "m"}, "move frame")
    try:
        return Move(match_id=obj["m"])  # type: ignore[arg-type]
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"the stranger sent a bad move frame: {exc}") from exc


_FRAME_DECODERS: dict[str, Callable[[dict[object, object]], Frame]] = {
    kind: _handshake_decoder(cls) for cls, (kind, _keys) in _HANDSHAKE_WIRE.items()
} | {"msg": _decode_envelope, "move": _decode_move}


class FrameDecoder:
    """Splits a byte stream into frames.

    Call :meth:`feed` with bytes as they arrive, then :meth:`next_frame` until it
    returns ``None``.  The length prefix is checked as soon as its 4 bytes are
    in, so bytes that do not (yet) make a complete frame never exceed
    ``MAX_FRAME + 4``.  Feeding again before draining the complete frames
    already held is refused once the buffer exceeds that bound, so the decoder
    holds at most ``MAX_FRAME + 4`` bytes plus the last chunk fed.

    After :meth:`next_frame` has raised, the decoder is broken for good: every
    further call raises :class:`~strangers.errors.RemoteProtocolError` again.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting to be decoded."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append ``data`` received from the peer."""
        if len(self._buffer) > MAX_FRAME + _PREFIX.size:
            raise LocalProtocolError(
                f"{len(self._buffer)} bytes are still buffered;"
                " call next_frame() until it returns None before feeding more"
            )
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or ``None`` if more bytes are needed.

        Raises :class:`~strangers.errors.RemoteProtocolError` on a bad frame.
        """
        if self._error is not None:
            raise RemoteProtocolError(f"the frame stream already failed: {self._error}")
        try:
            return self._next_frame()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _next_frame(self) -> Frame | None:
        if len(self._buffer) < _PREFIX.size:
            return None
        (size,) = _PREFIX.unpack_from(self._buffer)
        if not 1 <= size <= MAX_FRAME:
            raise RemoteProtocolError(
                f"the stranger announced a frame of {size} bytes; frames hold 1 to {MAX_FRAME}"
            )
        end = _PREFIX.size + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[_PREFIX.size : end])
        del self._buffer[:end]
        obj = _unpack_map(body, "frame")
        return _kind(obj, "frame", _FRAME_DECODERS)(obj)


# --- padding and inner messages -------------------------------------------------------


def _padded_size(length: int) -> int:
    return -(-(_PAD_PREFIX.size + length) // PAD_BLOCK) * PAD_BLOCK


def encode_inner(message: InnerMessage) -> bytes:
    """Return ``message`` as a padded plaintext, ready to encrypt."""
    if type(message) not in _INNER_WIRE:
        raise LocalProtocolError(f"cannot encode {brief(message)} as a chat message")
    kind, keys = _INNER_WIRE[type(message)]
    if isinstance(message, Text):
        if message.franking is None:
            raise LocalProtocolError(f"a text goes on the wire franked: {brief(message)}")
        body: dict[str, Any] = {"t": kind, "id": message.id, "x": message.text,
                                "k": message.franking.key, "g": message.franking.signature}
    else:
        body = {"t": kind} | {key: getattr(message, attr) for key, attr in keys.items()}
    content = _pack(body)
    padding = _padded_size(len(content)) - _PAD_PREFIX.size - len(content)
    return _PAD_PREFIX.pack(len(content)) + content + bytes(padding)


def decode_inner(data: bytes) -> InnerMessage:
    """Return the message in the padded plaintext ``data`` decrypted from the peer.

    Raises :class:`~strangers.errors.RemoteProtocolError` if anything is wrong.
    """
    if len(data) < _PAD_PREFIX.size:
        raise RemoteProtocolError(f"the stranger sent a message of {len(data)} bytes, too short")
    (length,) = _PAD_PREFIX.unpack_from(data)
    if len(data) != _padded_size(length):
        raise RemoteProtocolError(
            f"the stranger sent a message of {len(data)} bytes declaring {length} bytes of"
            f" content; it must be padded to exactly {_padded_size(length)}"
        )
    end = _PAD_PREFIX.size + length
    if any(data[end:]):
        raise RemoteProtocolError("the stranger sent a message whose padding is not all zero")
    obj = _unpack_map(data[_PAD_PREFIX.size : end], "message")
    cls = _kind(obj, "message", _INNER_TYPES)
    kind, keys = _INNER_WIRE[cls]
    _check_keys(obj, {"t", *keys}, f"{kind} message")
    try:
        if cls is Text:
            franking = Franking(obj["k"], obj["g"])  # type: ignore[arg-type]
            return Text(obj["id"], obj["x"], franking)  # type: ignore[arg-type]
        fields: dict[str, Any] = {attr: obj[key] for key, attr in keys.items()}
        return cls(**fields)
    except (LocalProtocolError, CryptoError) as exc:
        raise RemoteProtocolError(f"the stranger sent a bad {kind} message: {exc}") from exc
