"""One end-to-end encrypted chat between two strangers, as a sans-IO state machine.

:class:`ChatConnection` never touches a socket.  The adapter that owns the
stream feeds it bytes with :meth:`~ChatConnection.receive_data` (``b""`` for
end of stream), pulls events with :meth:`~ChatConnection.next_event` until it
returns :data:`NEED_DATA` or :data:`CLOSED`, writes what
:meth:`~ChatConnection.send` returns, and after every call of ``next_event()``
(whatever it returned) writes :meth:`~ChatConnection.data_to_send` too.

The conversation, in frames (see :mod:`strangers.crypto.frames` and the
handshake in :mod:`strangers.crypto.handshake`)::

    initiator                                      responder
      start() -> commit          ------------------>  (start() -> b"": nothing before a commit)
                                 <------------------  hello
      hello, finished, msg(ready) ----------------->  Established (finished verified)
                                 <------------------  finished
      Established (finished verified)
      msg(text | typing | delivered | ping | pong | bye)  <---->  msg(...)

1. The initiator's ``start()`` returns its commit; the responder's returns
   ``b""``, and its hello comes out of ``data_to_send()`` once a valid commit
   arrived.
2. The initiator answers the responder's hello with its own hello, its
   finished MAC and its first encrypted message, :class:`Ready`, in one
   flight; the responder verifies the hello against the commitment, then the
   finished MAC, reports :class:`Established` and sends its own finished.
   The initiator reports :class:`Established` once that verified.  A frame
   out of this order is a :class:`~strangers.errors.RemoteProtocolError`, a
   wrong commitment, signature or MAC a :class:`~strangers.errors.CryptoError`.
3. The initiator's first encrypted message is always :class:`Ready`; the
   responder's ratchet cannot encrypt until it has decrypted it, and anything
   else first, or a second ready, is a protocol error.  Ready is not reported.
4. Then either side sends :class:`Text`, :class:`Typing`, :class:`Delivered`,
   :class:`Ping`; a received ping is answered automatically with a
   :class:`Pong` (queued in ``data_to_send()``, only the latest if several
   pings wait) and is not reported; a received pong is reported.
5. Text ids: the ids of the texts we send must increase; a received text's id
   must be greater than the previous one's (a stream delivers ratchet messages
   in order).  A received :class:`Delivered` must name a text we sent and whose
   receipt has not come yet; anything else is a protocol error.  At most
   ``MAX_UNDELIVERED`` texts may await their receipt: beyond that ``send()``
   refuses a text (``LocalProtocolError``), so the set stays bounded.
6. :class:`Bye` ends the chat in either direction (state ``CLOSED``); an end
   of stream before any bye also closes it (:data:`CLOSED`: the stranger left).

7. Moving (``docs/protocol.md`` §6.9): streams do not migrate between
   connections, so an established chat moves to a new stream in one
   authenticated step per direction.  The initiator writes
   :meth:`~ChatConnection.move_opening` (a clear ``move`` frame naming the
   match) as the first frame of a new stream, then sends :class:`Moved` on
   the old stream as its last message there and writes everything after it
   on the new stream.  The responder checks that opening with
   :meth:`~ChatConnection.accept_move`, then does the same: :class:`Moved` on
   the old stream, everything after on the new one.  Each side reads the
   old stream up to the stranger's :class:`Moved` (reported as an event; no
   byte may follow it on that stream) and only then the new stream.  The
   ratchet is the same object throughout, so order is kept and a message
   cannot be replayed from one stream to the other.  One move per chat; the
   responder may only move after the opening, the initiator only after
   writing it.

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
import hmac
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.errors import LocalProtocolError, RemoteProtocolError

from .frames import (
    Bye,
    Contact,
    Delivered,
    Envelope,
    FrameDecoder,
    InnerMessage,
    Keep,
    Move,
    Moved,
    Ping,
    Pong,
    Ready,
    Text,
    Typing,
    decode_inner,
    encode_frame,
    encode_inner,
)
from .franking import Franking, frank, verify_franking
from .handshake import Commit, Finished, Handshake, Hello, Role
from .primitives import Rng
from .ratchet import DoubleRatchet, Header

__all__ = [
    "CLOSED",
    "MAX_QUEUED",
    "MAX_UNDELIVERED",
    "NEED_DATA",
    "INITIAL_STATE",
    "TRANSITIONS",
    "Bye",
    "ChatConnection",
    "ConnectionState",
    "ConnectionStatistics",
    "Delivered",
    "FrankedText",
    "MAX_EVIDENCE",
    "Established",
    "Event",
    "Move",
    "Moved",
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
#: Most texts we sent whose Delivered receipt has not arrived yet.
MAX_UNDELIVERED: Final = 1024
#: How many of the stranger's latest texts the connection keeps, with their franking,
#: for a report (``docs/protocol.md`` §6.11).
MAX_EVIDENCE: Final = 200


@dataclass(frozen=True)
class FrankedText:
    """One of the stranger's texts as it arrived, with the evidence that it sent it.

    ``seq`` is the text's number among the stranger's texts in this chat (1, 2...).
    """

    seq: int
    id: int
    text: str
    franking: Franking

_REPR = reprlib.Repr()
_REPR.maxother = 80


def _short_repr(value: object) -> str:
    """``repr(value)`` cut to about 80 characters: error messages echo values, not 16 KiB."""
    return _REPR.repr(value)


class ConnectionState(enum.Enum):
    """Where a :class:`ChatConnection` stands."""

    #: The responder waits for the initiator's commit; it sends nothing before it.
    AWAITING_COMMIT = "awaiting commit"
    #: Waiting for the stranger's hello (the initiator's commit, or the responder's hello, is out).
    HANDSHAKING = "handshaking"
    #: Keys derived; waiting for the stranger's finished MAC (key confirmation).
    CONFIRMING = "confirming"
    #: The handshake is verified; messages flow both ways.
    OPEN = "open"
    #: A bye was sent or received, or the stream ended; the chat is over.
    CLOSED = "closed"
    #: The peer broke the protocol or a check failed; the chat is over.
    ERROR = "error"


class Trigger(enum.Enum):
    """What moves a :class:`ChatConnection` from one state to the next."""

    #: The initiator's commit arrived (only a responder can be waiting for one).
    COMMIT_RECEIVED = "commit received"
    #: The peer's hello arrived and verified.
    HELLO_RECEIVED = "hello received"
    #: The peer's finished MAC arrived and verified.
    FINISHED_RECEIVED = "finished received"
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


_S = ConnectionState
#: Every allowed transition; a (state, trigger) pair not in here is a protocol
#: error (``RemoteProtocolError`` for what we receive, ``LocalProtocolError`` for
#: what we send).  The responder starts in ``AWAITING_COMMIT``, the initiator in
#: ``HANDSHAKING`` (its commit is its first frame), so a commit sent to an
#: initiator, or a hello sent to a responder before the commit, has no
#: transition.  ``ERROR`` is entered from any state by a failure in
#: ``next_event()`` and never left.
TRANSITIONS: Final[Mapping[tuple[ConnectionState, Trigger], ConnectionState]] = MappingProxyType(
    {
        (_S.AWAITING_COMMIT, Trigger.COMMIT_RECEIVED): _S.HANDSHAKING,
        (_S.AWAITING_COMMIT, Trigger.END_OF_STREAM): _S.CLOSED,
        (_S.HANDSHAKING, Trigger.HELLO_RECEIVED): _S.CONFIRMING,
        (_S.HANDSHAKING, Trigger.END_OF_STREAM): _S.CLOSED,
        (_S.CONFIRMING, Trigger.FINISHED_RECEIVED): _S.OPEN,
        (_S.CONFIRMING, Trigger.END_OF_STREAM): _S.CLOSED,
        (_S.OPEN, Trigger.MESSAGE_RECEIVED): _S.OPEN,
        (_S.OPEN, Trigger.BYE_RECEIVED): _S.CLOSED,
        (_S.OPEN, Trigger.END_OF_STREAM): _S.CLOSED,
        (_S.OPEN, Trigger.MESSAGE_SENT): _S.OPEN,
        (_S.OPEN, Trigger.BYE_SENT): _S.CLOSED,
    }
)
#: The first state of each role.
INITIAL_STATE: Final[Mapping[Role, ConnectionState]] = MappingProxyType(
    {Role.INITIATOR: _S.HANDSHAKING, Role.RESPONDER: _S.AWAITING_COMMIT}
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


Event = Established | Text | Typing | Delivered | Pong | Bye | Moved | Keep | Contact
_SENDABLE = (Text, Typing, Delivered, Bye, Ping, Moved, Keep, Contact)


@dataclass(frozen=True)
class ConnectionStatistics:
    """A snapshot of a :class:`ChatConnection`, for introspection and tests."""

    role: Role
    state: ConnectionState
    messages_sent: int
    messages_received: int
    queued_messages: int
    buffered_bytes: int
    awaiting_delivery: int = 0
    """Texts sent whose Delivered receipt has not arrived (at most ``MAX_UNDELIVERED``)."""


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
        self._identity = local_identity
        self._remote_identity = remote_identity
        self._rng = rng
        #: Texts franked by us / verified from the stranger so far (§6.11 sequence numbers).
        self._franked_out = 0
        self._franked_in = 0
        self._evidence: collections.deque[FrankedText] = collections.deque(maxlen=MAX_EVIDENCE)
        self._state = INITIAL_STATE[role]
        self._decoder = FrameDecoder()
        self._started = False
        self._end_of_stream = False
        self._ratchet: DoubleRatchet | None = None
        self._associated_data = b""
        self._pending_safety_code = ""
        self._safety_code: str | None = None
        self._handshake_out = bytearray()
        self._ready_received = role is Role.INITIATOR
        self._outbox: collections.deque[InnerMessage] = collections.deque()
        self._pong: Pong | None = None
        self._sent = 0
        self._received = 0
        self._last_text_sent = 0
        self._last_text_received = 0
        #: Ids of the texts sealed and sent whose Delivered has not arrived (insertion order).
        self._undelivered: dict[int, None] = {}
        self._match_id = match_id
        #: The move (rule 7): opening written or accepted, our Moved sent, the stranger's received.
        self._move_opened = False
        self._moved_out = False
        self._moved_in = False

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
    def match_id(self) -> bytes:
        """The 16-byte id of this chat's match."""
        return self._match_id

    @property
    def remote_identity(self) -> bytes:
        """The stranger's raw Ed25519 public key (its peer id names it)."""
        return self._remote_identity

    @property
    def evidence(self) -> tuple[FrankedText, ...]:
        """The stranger's latest texts (at most ``MAX_EVIDENCE``), oldest first, each
        with the franking that proves the stranger sent it."""
        return tuple(self._evidence)

    @property
    def can_encrypt(self) -> bool:
        """True once our messages can be encrypted right away (not queued).

        The responder can encrypt only after the initiator's Ready arrived;
        a Bye said before then cannot reach the stranger at all.
        """
        return (
            self._state is ConnectionState.OPEN
            and self._ratchet is not None
            and self._ratchet.can_send
        )

    @property
    def move_opened(self) -> bool:
        """True once the move stream is open: its opening written (initiator) or accepted."""
        return self._move_opened

    @property
    def moved_out(self) -> bool:
        """True once our :class:`Moved` was sent: we write only on the move stream now."""
        return self._moved_out

    @property
    def moved_in(self) -> bool:
        """True once the stranger's :class:`Moved` arrived: read only the move stream now."""
        return self._moved_in

    @property
    def can_move(self) -> bool:
        """True while the initiator may open a move (the chat is open, not moved yet)."""
        return self._role is Role.INITIATOR and self.can_encrypt and not self._move_opened

    def move_opening(self) -> bytes:
        """Return the ``move`` frame to write first on a new stream (initiator only, once).

        Send :class:`Moved` on the old stream afterwards; raises
        :class:`~strangers.errors.LocalProtocolError` when the chat cannot move.
        """
        if not self.can_move:
            raise LocalProtocolError(
                f"the {self._role.value} cannot open a move while the chat is {self._state.value}"
                + (" (it moved already)" if self._move_opened else "")
            )
        self._move_opened = True
        return encode_frame(Move(self._match_id))

    def accept_move(self, frame: object) -> None:
        """Check the first frame of a move stream from the stranger (responder only, once).

        Raises :class:`~strangers.errors.RemoteProtocolError` unless ``frame`` is a
        ``move`` naming this chat's match, arriving while the chat is open and
        has not moved; the adapter then resets that stream (the chat goes on).
        """
        if type(frame) is not Move:
            raise RemoteProtocolError(
                f"a move stream must open with a move frame, not {_short_repr(frame)}"
            )
        if self._role is not Role.RESPONDER or not self.can_encrypt or self._move_opened:
            raise RemoteProtocolError(
                f"the stranger opened a move the {self._role.value} cannot accept while the"
                f" chat is {self._state.value}" + (" (it moved already)" if self._move_opened
                                                  else "")
            )
        if not hmac.compare_digest(frame.match_id, self._match_id):
            raise RemoteProtocolError("the stranger opened a move for another match")
        self._move_opened = True

    def statistics(self) -> ConnectionStatistics:
        """Counters describing this connection (no secrets)."""
        return ConnectionStatistics(
            role=self._role,
            state=self._state,
            messages_sent=self._sent,
            messages_received=self._received,
            queued_messages=len(self._outbox) + (self._pong is not None),
            buffered_bytes=self._decoder.buffered,
            awaiting_delivery=len(self._undelivered),
        )

    # --- sending -----------------------------------------------------------------------

    def start(self) -> bytes:
        """Return what to send first: the initiator's commit, ``b""`` for the responder
        (its hello follows a valid commit, through ``data_to_send()``).  Call exactly once."""
        if self._started:
            raise LocalProtocolError("start() was already called on this chat connection")
        self._started = True
        if self._role is Role.INITIATOR:
            return encode_frame(self._handshake.commit())
        return b""

    def send(self, message: Text | Typing | Delivered | Bye | Ping | Moved | Keep | Contact) -> bytes:
        """Return the bytes that carry ``message`` to the stranger.

        Anything the machine itself had waiting comes first in the result, so
        frames stay in order.  Raises :class:`~strangers.errors.LocalProtocolError`
        for a message the application may not send, outside ``OPEN``, for a
        text whose id is not above the previous one's, or when
        ``MAX_UNDELIVERED`` texts already await their receipt.
        """
        if type(message) not in _SENDABLE:
            raise LocalProtocolError(f"the application cannot send {_short_repr(message)}")
        trigger = Trigger.BYE_SENT if type(message) is Bye else Trigger.MESSAGE_SENT
        next_state = TRANSITIONS.get((self._state, trigger))
        ratchet = self._ratchet
        if next_state is None or ratchet is None:
            raise LocalProtocolError(
                f"cannot send {_short_repr(message)} while the chat is {self._state.value}"
            )
        if type(message) is Text:
            self._check_text_to_send(message)
            message = self._frank(message)
        if type(message) is Moved:
            if not self._move_opened or self._moved_out or not ratchet.can_send:
                raise LocalProtocolError(
                    "Moved follows the move stream's opening, once"
                    + (" (sent already)" if self._moved_out else "")
                )
            self._moved_out = True
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
            self._note_text_sent(message)
            self._state = next_state
            return bytes(self._take_handshake_out())
        self._note_text_sent(message)
        self._state = next_state
        return self._pending(ratchet) + self._seal(ratchet, message)

    def _check_text_to_send(self, text: Text) -> None:
        if text.id <= self._last_text_sent:
            raise LocalProtocolError(
                f"text ids must increase: {text.id} follows {self._last_text_sent}"
            )
        waiting = len(self._undelivered) + sum(type(item) is Text for item in self._outbox)
        if waiting >= MAX_UNDELIVERED:
            raise LocalProtocolError(
                f"{waiting} messages still wait for the stranger's delivery receipt;"
                " cannot send more"
            )

    def _frank(self, text: Text) -> Text:
        self._franked_out += 1
        franking = frank(self._identity, self._rng, self._match_id, self._franked_out, text.text)
        return Text(text.id, text.text, franking)

    def _note_text_sent(self, message: InnerMessage) -> None:
        if type(message) is Text:
            self._last_text_sent = message.id

    def data_to_send(self) -> bytes:
        """Return bytes the machine wants sent (handshake frames, ready, pongs,
        queued messages), or ``b""``."""
        ratchet = self._ratchet
        if self._state in (ConnectionState.CLOSED, ConnectionState.ERROR):
            return b""
        if ratchet is None:
            return self._take_handshake_out()
        return self._pending(ratchet)

    def _take_handshake_out(self) -> bytes:
        data = bytes(self._handshake_out)
        self._handshake_out.clear()
        return data

    def _pending(self, ratchet: DoubleRatchet) -> bytes:
        """Handshake frames, then the encrypted outbox (oldest first), then the pong."""
        frames = [self._take_handshake_out()]
        if ratchet.can_send:
            if self._pong is not None:
                self._outbox.append(self._pong)
                self._pong = None
            while self._outbox:
                frames.append(self._seal(ratchet, self._outbox.popleft()))
        return b"".join(frames)

    def _seal(self, ratchet: DoubleRatchet, message: InnerMessage) -> bytes:
        header, ciphertext = ratchet.encrypt(encode_inner(message), self._associated_data)
        self._sent += 1
        if type(message) is Text:
            self._undelivered[message.id] = None
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
            raise LocalProtocolError("call start() and send its bytes before next_event()")
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
            self._outbox.clear()
            self._handshake_out.clear()
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
        if isinstance(frame, Commit):
            self._receive_commit(frame)
            return None
        if isinstance(frame, Hello):
            self._receive_hello(frame)
            return None
        if isinstance(frame, Finished):
            return self._receive_finished(frame)
        if isinstance(frame, Move):
            raise RemoteProtocolError(
                "the stranger sent a move frame inside a chat stream (it opens a move stream)"
            )
        return self._receive_message(frame)

    def _transition(self, trigger: Trigger) -> ConnectionState:
        next_state = TRANSITIONS.get((self._state, trigger))
        if next_state is None:
            raise RemoteProtocolError(
                f"the stranger broke the chat protocol: {trigger.value}"
                f" while the chat was {self._state.value}"
            )
        return next_state

    def _receive_commit(self, commit: Commit) -> None:
        next_state = self._transition(Trigger.COMMIT_RECEIVED)
        self._handshake_out += encode_frame(self._handshake.receive_commit(commit))
        self._state = next_state

    def _receive_hello(self, hello: Hello) -> None:
        next_state = self._transition(Trigger.HELLO_RECEIVED)
        keys = self._handshake.receive_hello(hello)
        self._ratchet = keys.ratchet
        self._associated_data = keys.associated_data
        self._pending_safety_code = keys.safety_code
        if self._role is Role.INITIATOR:
            self._handshake_out += encode_frame(self._handshake.hello())
            self._handshake_out += encode_frame(self._handshake.finished())
            self._outbox.append(Ready())
        self._state = next_state

    def _receive_finished(self, finished: Finished) -> Established:
        next_state = self._transition(Trigger.FINISHED_RECEIVED)
        self._handshake.receive_finished(finished)
        if self._role is Role.RESPONDER:
            self._handshake_out += encode_frame(self._handshake.finished())
        self._safety_code = self._pending_safety_code
        self._state = next_state
        return Established(self._safety_code)

    def _receive_message(self, envelope: Envelope) -> Event | None:
        next_state = self._transition(Trigger.MESSAGE_RECEIVED)
        ratchet = self._ratchet
        if ratchet is None:  # pragma: no cover - OPEN implies a completed handshake
            raise LocalProtocolError("the chat is open without session keys")
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
        if isinstance(message, Ready):
            self._ready_received = True
            return None
        if isinstance(message, Ping):
            self._pong = Pong(message.n)
            return None
        if isinstance(message, Text):
            if message.id <= self._last_text_received:
                raise RemoteProtocolError(
                    f"the stranger sent text {message.id} after text {self._last_text_received}:"
                    " text ids must increase"
                )
            self._receive_text(message)
        if isinstance(message, Delivered):
            if message.id not in self._undelivered:
                raise RemoteProtocolError(
                    f"the stranger acknowledged text {message.id}, which we did not send"
                    " or which was already acknowledged"
                )
            del self._undelivered[message.id]
        if isinstance(message, Moved):
            self._receive_moved()
        if isinstance(message, Bye):
            next_state = self._transition(Trigger.BYE_RECEIVED)
        self._state = next_state
        return message

    def _receive_text(self, text: Text) -> None:
        """Check the text's franking (§6.11) and keep it as evidence."""
        franking = text.franking
        if franking is None:  # pragma: no cover - decode_inner gives every text its franking
            raise RemoteProtocolError("the stranger sent a text without franking")
        seq = self._franked_in + 1
        verify_franking(self._remote_identity, self._match_id, seq, text.text, franking)
        self._franked_in = seq
        self._last_text_received = text.id
        self._evidence.append(FrankedText(seq, text.id, text.text, franking))

    def _receive_moved(self) -> None:
        if self._moved_in:
            raise RemoteProtocolError("the stranger sent Moved twice")
        if self._role is Role.INITIATOR and not self._move_opened:
            raise RemoteProtocolError("the stranger sent Moved, but we opened no move")
        if self._decoder.buffered:
            raise RemoteProtocolError(
                f"the stranger sent {self._decoder.buffered} bytes after Moved on the old stream"
            )
        self._moved_in = True
