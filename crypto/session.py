"""One end-to-end encrypted chat between two strangers, as a sans-IO state machine.

:class:`ChatConnection` never touches a socket.  The adapter that owns the
stream feeds it bytes with :meth:`~ChatConnection.receive_data` (``b""`` for
end of stream), pulls events with :meth:`~ChatConnection.next_event` until it
returns :data:`NEED_DATA` or :data:`CLOSED`, writes what
:meth:`~ChatConnection.send` returns, and after every call of ``next_event()``
(whatever it returned) writes :meth:`~ChatConnection.data_to_send` too.

The conversation, in frames (see :mod:`strangers.crypto.frames`)::

    initiator                                    responder
      start() -> hello  ------------------------>
                        <------------------------  hello <- start()
      Established                                  Established
      msg(ready)        ------------------------>  (its ratchet may now send)
      msg(text | typing | delivered | ping | pong | bye)  <---->  msg(...)

1. Both sides send their hello first, without waiting (``start()``).
2. Each side verifies the other's hello (:class:`~strangers.crypto.handshake.Handshake`)
   and reports :class:`Established` with the safety code; any other frame
   before the hello is a :class:`~strangers.errors.RemoteProtocolError`.
3. The initiator's first encrypted message is always :class:`Ready`; the
   responder's ratchet cannot encrypt until it has decrypted it, and anything
   else first, or a second ready, is a protocol error.  Ready is not reported.
4. Then either side sends :class:`Text`, :class:`Typing`, :class:`Delivered`,
   :class:`Ping`; a received ping is answered automatically with a
   :class:`Pong` (queued in ``data_to_send()``, only the latest if several
   pings wait) and is not reported; a received pong is reported.
5. :class:`Bye` ends the chat in either direction (state ``CLOSED``); an end
   of stream before any bye also closes it (:data:`CLOSED`: the stranger left).

What the responder sends before the initiator's ready arrives is queued
(up to ``MAX_QUEUED`` messages, beyond that ``send()`` raises) and comes out of
``data_to_send()`` once the ratchet can encrypt.  A bye said in that window
cannot be encrypted at all: the queue is dropped and the machine closes; the
adapter then closes the stream, which the stranger sees as an end of stream.

Any failure while receiving (a malformed frame, a forged, tampered or
replayed ciphertext) raises :class:`~strangers.errors.RemoteProtocolError`
or :class:`~strangers.errors.CryptoError` from ``next_event()``; the machine
is then in ``ERROR`` for good and the adapter closes the stream.
"""

from __future__ import annotations

import collections
import enum
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.errors import LocalProtocolError, RemoteProtocolError

from .frames import (
    Bye,
    Delivered,
    Envelope,
    FrameDecoder,
    InnerMessage,
    Ping,
    Pong,
    Ready,
    Text,
    Typing,
    decode_inner,
    encode_frame,
    encode_inner,
)
from .handshake import Handshake, Hello, Role
from .primitives import Rng
from .ratchet import DoubleRatchet, Header

__all__ = [
    "CLOSED",
    "MAX_QUEUED",
    "NEED_DATA",
    "TRANSITIONS",
    "Bye",
    "ChatConnection",
    "ConnectionState",
    "ConnectionStatistics",
    "Delivered",
    "Established",
    "Event",
    "Ping",
    "Pong",
    "Role",
    "Sentinel",
    "Text",
    "Trigger",
    "Typing",
]

#: Most messages the responder may queue before it can encrypt.
MAX_QUEUED: Final = 64

_REPR = reprlib.Repr()
_REPR.maxother = 80


def _short_repr(value: object) -> str:
    """``repr(value)`` cut to about 80 characters: error messages echo values, not 16 KiB."""
    return _REPR.repr(value)


class ConnectionState(enum.Enum):
    """Where a :class:`ChatConnection` stands."""

    #: Hellos are being exchanged; nothing can be sent yet.
    HANDSHAKING = "handshaking"
    #: The handshake is verified; messages flow both ways.
    OPEN = "open"
    #: A bye was sent or received, or the stream ended; the chat is over.
    CLOSED = "closed"
    #: The peer broke the protocol or a ciphertext failed; the chat is over.
    ERROR = "error"


class Trigger(enum.Enum):
    """What moves a :class:`ChatConnection` from one state to the next."""

    #: The peer's hello arrived and verified.
    HELLO_RECEIVED = "hello received"
    #: An encrypted message other than bye arrived.
    MESSAGE_RECEIVED = "message received"
    #: The peer said bye.
    BYE_RECEIVED = "bye received"
    #: The stream ended.
    END_OF_STREAM = "end of stream"
    #: We sent a message other than bye.
    MESSAGE_SENT = "message sent"
    #: We said bye.
    BYE_SENT = "bye sent"


#: Every allowed transition; a (state, trigger) pair not in here is a protocol
#: error (``RemoteProtocolError`` for what we receive, ``LocalProtocolError`` for
#: what we send).  ``ERROR`` is entered from any state by a failure in
#: ``next_event()`` and never left.
TRANSITIONS: Final[Mapping[tuple[ConnectionState, Trigger], ConnectionState]] = MappingProxyType(
    {
        (ConnectionState.HANDSHAKING, Trigger.HELLO_RECEIVED): ConnectionState.OPEN,
        (ConnectionState.HANDSHAKING, Trigger.END_OF_STREAM): ConnectionState.CLOSED,
        (ConnectionState.OPEN, Trigger.MESSAGE_RECEIVED): ConnectionState.OPEN,
        (ConnectionState.OPEN, Trigger.BYE_RECEIVED): ConnectionState.CLOSED,
        (ConnectionState.OPEN, Trigger.END_OF_STREAM): ConnectionState.CLOSED,
        (ConnectionState.OPEN, Trigger.MESSAGE_SENT): ConnectionState.OPEN,
        (ConnectionState.OPEN, Trigger.BYE_SENT): ConnectionState.CLOSED,
    }
)


class Sentinel(enum.Enum):
    """Values of :meth:`ChatConnection.next_event` that are not events."""

    #: No complete event yet: feed more bytes with ``receive_data()``.
    NEED_DATA = "need data"
    #: The chat is over (bye or end of stream); nothing more will come.
    CLOSED = "closed"


NEED_DATA: Final = Sentinel.NEED_DATA
CLOSED: Final = Sentinel.CLOSED


@dataclass(frozen=True)
class Established:
    """The handshake verified; users may compare ``safety_code`` out of band."""

    safety_code: str

    def __post_init__(self) -> None:
        if type(self.safety_code) is not str or not self.safety_code:
            raise LocalProtocolError(
                f"a safety code must be a non-empty string, not {self.safety_code!r}"
            )


Event = Established | Text | Typing | Delivered | Pong | Bye
_SENDABLE = (Text, Typing, Delivered, Bye, Ping)


@dataclass(frozen=True)
class ConnectionStatistics:
    """A snapshot of a :class:`ChatConnection`, for introspection and tests."""

    role: Role
    state: ConnectionState
    messages_sent: int
    messages_received: int
    queued_messages: int
    buffered_bytes: int


class ChatConnection:
    """Our end of one chat; see the module docstring for the protocol."""

    def __init__(
        self,
        *,
        role: Role,
        match_id: bytes,
        local_identity: Ed25519PrivateKey,
        remote_identity: bytes,
        rng: Rng,
    ) -> None:
        self._handshake = Handshake(
            role=role,
            match_id=match_id,
            local_identity=local_identity,
            remote_identity=remote_identity,
            rng=rng,
        )
        self._role = role
        self._state = ConnectionState.HANDSHAKING
        self._decoder = FrameDecoder()
        self._started = False
        self._end_of_stream = False
        self._ratchet: DoubleRatchet | None = None
        self._associated_data = b""
        self._safety_code: str | None = None
        self._ready_received = role is Role.INITIATOR
        self._outbox: collections.deque[InnerMessage] = collections.deque()
        self._pong: Pong | None = None
        self._sent = 0
        self._received = 0

    @property
    def role(self) -> Role:
        """Which side of the chat we play."""
        return self._role

    @property
    def state(self) -> ConnectionState:
        """The current :class:`ConnectionState`."""
        return self._state

    @property
    def safety_code(self) -> str | None:
        """The code users compare out of band; ``None`` until :class:`Established`."""
        return self._safety_code

    @property
    def can_encrypt(self) -> bool:
        """True once our messages can be encrypted right away (not queued).

        The responder can encrypt only after the initiator's Ready arrived;
        a Bye said before then cannot reach the stranger at all.
        """
        return self._ratchet is not None and self._ratchet.can_send

    def statistics(self) -> ConnectionStatistics:
        """Counters describing this connection (no secrets)."""
        return ConnectionStatistics(
            role=self._role,
            state=self._state,
            messages_sent=self._sent,
            messages_received=self._received,
            queued_messages=len(self._outbox) + (self._pong is not None),
            buffered_bytes=self._decoder.buffered,
        )

    # --- sending -----------------------------------------------------------------------

    def start(self) -> bytes:
        """Return our hello frame, to be sent first.  Call exactly once."""
        if self._started:
            raise LocalProtocolError("start() was already called on this chat connection")
        self._started = True
        return encode_frame(self._handshake.hello())

    def send(self, message: Text | Typing | Delivered | Bye | Ping) -> bytes:
        """Return the bytes that carry ``message`` to the stranger.

        Anything the machine itself had waiting comes first in the result, so
        frames stay in order.  Raises :class:`~strangers.errors.LocalProtocolError`
        for a message the application may not send or outside ``OPEN``.
        """
        if type(message) not in _SENDABLE:
            raise LocalProtocolError(f"the application cannot send {_short_repr(message)}")
        trigger = Trigger.BYE_SENT if type(message) is Bye else Trigger.MESSAGE_SENT
        next_state = TRANSITIONS.get((self._state, trigger))
        if next_state is None:
            raise LocalProtocolError(
                f"cannot send {_short_repr(message)} while the chat is {self._state.value}"
            )
        ratchet = self._ratchet
        assert ratchet is not None  # OPEN implies a completed handshake
        if not ratchet.can_send:
            if type(message) is Bye:
                self._outbox.clear()
            elif len(self._outbox) >= MAX_QUEUED:
                raise LocalProtocolError(
                    f"{len(self._outbox)} messages already wait for the stranger's first"
                    f" message; cannot queue {_short_repr(message)}"
                )
            else:
                self._outbox.append(message)
            self._state = next_state
            return b""
        self._state = next_state
        return self._flush() + self._seal(ratchet, message)

    def data_to_send(self) -> bytes:
        """Return bytes the machine wants sent (ready, pongs, queued messages), or ``b""``."""
        if self._state is not ConnectionState.OPEN:
            return b""
        return self._flush()

    def _flush(self) -> bytes:
        """Encrypt what waits: the outbox (oldest first), then the pong."""
        ratchet = self._ratchet
        assert ratchet is not None  # only called in OPEN or right after leaving it
        if not ratchet.can_send:
            return b""
        if self._pong is not None:
            self._outbox.append(self._pong)
            self._pong = None
        frames = []
        while self._outbox:
            frames.append(self._seal(ratchet, self._outbox.popleft()))
        return b"".join(frames)

    def _seal(self, ratchet: DoubleRatchet, message: InnerMessage) -> bytes:
        header, ciphertext = ratchet.encrypt(encode_inner(message), self._associated_data)
        self._sent += 1
        return encode_frame(Envelope(header.to_bytes(), ciphertext))

    # --- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the stranger; ``b""`` means the stream ended.

        Bytes arriving once the chat is over (``CLOSED`` or ``ERROR``) are dropped.
        """
        if self._state in (ConnectionState.CLOSED, ConnectionState.ERROR):
            return
        if self._end_of_stream and data:
            raise LocalProtocolError("received data after the end of the stream")
        if data:
            self._decoder.feed(data)
        else:
            self._end_of_stream = True

    def next_event(self) -> Event | Literal[Sentinel.NEED_DATA, Sentinel.CLOSED]:
        """Return the next event, :data:`NEED_DATA` or :data:`CLOSED`.

        Raises :class:`~strangers.errors.RemoteProtocolError` or
        :class:`~strangers.errors.CryptoError` on bad input from the stranger;
        the state is then ``ERROR`` and every further call raises again.
        """
        if not self._started:
            raise LocalProtocolError("call start() and send our hello before next_event()")
        if self._state is ConnectionState.ERROR:
            raise RemoteProtocolError("this chat already failed; start a new one")
        try:
            while self._state is not ConnectionState.CLOSED:
                event = self._next_event()
                if event is not None:
                    return event
            return CLOSED
        except BaseException:
            self._state = ConnectionState.ERROR
            raise

    def _next_event(self) -> Event | Literal[Sentinel.NEED_DATA] | None:
        """One step: an event, NEED_DATA, or None when a frame produced no event."""
        frame = self._decoder.next_frame()
        if frame is None:
            if not self._end_of_stream:
                return NEED_DATA
            if self._decoder.buffered:
                raise RemoteProtocolError("the stream ended in the middle of a frame")
            self._state = self._transition(Trigger.END_OF_STREAM)
            return None
        if isinstance(frame, Hello):
            return self._receive_hello(frame)
        return self._receive_message(frame)

    def _transition(self, trigger: Trigger) -> ConnectionState:
        next_state = TRANSITIONS.get((self._state, trigger))
        if next_state is None:
            raise RemoteProtocolError(
                f"the stranger broke the chat protocol: {trigger.value}"
                f" while the chat was {self._state.value}"
            )
        return next_state

    def _receive_hello(self, hello: Hello) -> Established:
        next_state = self._transition(Trigger.HELLO_RECEIVED)
        keys = self._handshake.receive_hello(hello)
        self._ratchet = keys.ratchet
        self._associated_data = keys.associated_data
        self._safety_code = keys.safety_code
        if self._role is Role.INITIATOR:
            self._outbox.append(Ready())
        self._state = next_state
        return Established(keys.safety_code)

    def _receive_message(self, envelope: Envelope) -> Event | None:
        next_state = self._transition(Trigger.MESSAGE_RECEIVED)
        ratchet = self._ratchet
        assert ratchet is not None  # OPEN implies a completed handshake
        plaintext = ratchet.decrypt(
            Header.from_bytes(envelope.header), envelope.ciphertext, self._associated_data
        )
        message = decode_inner(plaintext)
        self._received += 1
        if (type(message) is Ready) == self._ready_received:
            raise RemoteProtocolError(
                f"the stranger sent {_short_repr(message)} out of order: Ready() comes once,"
                " as the initiator's first message"
            )
        if type(message) is Ready:
            self._ready_received = True
            return None
        if type(message) is Ping:
            self._pong = Pong(message.n)
            return None
        if type(message) is Bye:
            next_state = self._transition(Trigger.BYE_RECEIVED)
        self._state = next_state
        return message
