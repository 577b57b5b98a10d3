"""The chat adapter: moves bytes between a libp2p stream and a ChatConnection.

All protocol decisions live in :mod:`strangers.crypto.session`; this module
only reads, writes, times out and reports.  One :class:`ChatSession` is one
chat on its own stream (``/strangers/chat/3.0.0``).

Supervision: :meth:`ChatSession.run` never raises (only ``trio.Cancelled``
when its caller is cancelled).  Whatever goes wrong, a stream that breaks, a
stranger that stalls or goes silent, a frame that fails to decode or
authenticate, or a bug of ours, ends this one chat with a :class:`ChatEnd`
(``disconnected``, ``timeout`` or ``error``); for ``error`` an
:class:`~strangers.node.events.Error` event says why (also when the handshake
had not completed: the user then saw no ``matched``, the node logs the peer).

Liveness: a chat whose stranger vanished without a word (process frozen or
killed, machine asleep, network gone) would look open for ever, so both sides
ping every :data:`PING_INTERVAL` seconds (the other side answers with a pong)
and a chat ends with ``timeout`` once :data:`IDLE_TIMEOUT` seconds pass without
a byte from the stranger.  Every write that the chat itself makes (hello,
pongs, receipts, pings) is bounded by the same deadline or by
:data:`WRITE_TIMEOUT` (shorter), so a stranger that stops reading (its receive
window fills, our writes block) cannot hold the chat open either.  The
stranger is therefore reported gone at most :data:`LIVENESS_BOUND` seconds
after the last byte it sent.  A killed process is usually noticed at once,
when its kernel closes the TCP connection.

Moving (``docs/protocol.md`` §6.9): a chat that began on a relayed
connection moves to a direct one when hole punching found it.  The
initiator's mover (``open_move_stream``, given by the caller) waits for the
direct connection and opens a new stream on it; the opening frame goes
first on the new stream, then the encrypted Moved on the old one, and from
then on every write goes to the new stream.  The responder's stream handler
passes such a stream to :meth:`ChatSession.adopt_move_stream`, which checks
the opening and does the same.  The read loop reads the old stream up to the
stranger's Moved and only then the new one (whatever arrives there before is
held by the stream's flow-control window, so the buffer is bounded).  The
ratchet is one object, so nothing is lost or reordered.  Once both
directions moved, the old stream is closed and a ``path`` event tells the
user.  A move that cannot start (no direct connection, a failed opening)
leaves the chat on the relay.

Tasks: the read loop and the keepalive run side by side in one nursery; each
catches its own failures and hands them to :meth:`ChatSession._finish`, so no
error ever leaves the nursery (trio would wrap it in an ExceptionGroup).  The
read is not interleaved with the keepalive in one task because a py-libp2p
yamux ``read`` is not safe to cancel and retry: it may already have taken data
from the stream buffer when the cancellation lands.  Reads are only cancelled
when the chat ends anyway.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from strangers.crypto.frames import MAX_FRAME, ByeReason, Contact, FrameDecoder, Keep
from strangers.crypto.session import (
    CLOSED,
    NEED_DATA,
    Bye,
    ChatConnection,
    ConnectionState,
    Delivered,
    Established,
    Moved,
    Ping,
    Pong,
    Text,
    Typing,
)
from strangers.discovery.contact import AgreedContact, KeepInTouch, KeepState
from strangers.discovery.rtt import CHAT_HANDSHAKE, RoundTripTimer, RttEstimator
from strangers.errors import LocalProtocolError, RemoteProtocolError, StrangersError
from strangers.node.libp2p.streamio import (
    StreamEnded,
    StreamFailed,
    read_exactly,
    read_some,
    reset_quietly,
)
from strangers.safety.limits import MESSAGES, TokenBucket, Verdict

from . import events

logger = logging.getLogger(__name__)

CHAT_PROTOCOL = "/strangers/chat/3.0.0"
"""Version 3: version 2 (handshake v2, Double Ratchet) with franked texts (§6.11)."""
HANDSHAKE_TIMEOUT = CHAT_HANDSHAKE.floor
"""From the stream's opening to ``Established`` (a stalled handshake ends the chat),
with no round-trip estimate of the stranger; with one, derived from it
(``discovery/rtt.py`` ``CHAT_HANDSHAKE``: up to 20 s on a very slow path)."""
PING_INTERVAL = 5.0
IDLE_TIMEOUT = 15.0
"""An established chat ends after this long without a byte from the stranger."""
WRITE_TIMEOUT = 10.0
"""A write (ours or the keepalive's) that cannot finish in this time ends the chat."""
CLOSE_TIMEOUT = 1.0
"""How long closing or resetting the stream may take once the chat is over."""
BYE_WAIT = 1.0
LIVENESS_BOUND = IDLE_TIMEOUT + CLOSE_TIMEOUT
"""At most this long after a stranger's last byte, its chat has ended (16 s)."""
MOVE_TIMEOUT = 5.0
"""After the stranger's Moved, how long its move stream may take to arrive;
also the bound on reading a move stream's opening."""
MAX_OPENING = 64
"""Largest opening frame a move stream may announce (a real one is 28 bytes)."""


@dataclass(frozen=True)
class ChatEnd:
    """Why a chat ended: ``reason`` is the stranger's bye ("quit", "next", ...),
    ours (``by_us``), or "disconnected", "timeout", "error"."""

    reason: str
    by_us: bool


class _WriteFailed(Exception):
    """A write to the stream failed or took too long; ``end`` is what that means for the chat."""

    def __init__(self, end: ChatEnd, why: str) -> None:
        super().__init__(why)
        self.end = end


_DISCONNECTED = ChatEnd("disconnected", False)
_TIMEOUT = ChatEnd("timeout", False)
_ERROR = ChatEnd("error", False)


class ChatSession:
    """One running chat. Create it, then ``await run()`` it in a task you own."""

    def __init__(
        self,
        stream,  # libp2p INetStream
        connection: ChatConnection,
        *,
        on_event: Callable[[events.Event], Awaitable[None]],
        on_established: Callable[[str], Awaitable[None]],
        path: str = "direct",
        open_move_stream: Callable[[], Awaitable[Any]] | None = None,
        path_of: Callable[[object], str] | None = None,
        while_relayed: Callable[[], Awaitable[object]] | None = None,
        opening: bytes | None = None,
        rtt: RttEstimator | None = None,
        rtt_peer: bytes | None = None,
        on_contact: Callable[[AgreedContact], Awaitable[None]] | None = None,
    ) -> None:
        self.keep = KeepInTouch(os.urandom)
        """Keep in touch, by mutual consent (discovery/contact.py, protocol §6.12)."""
        self._on_contact = on_contact
        self._stream = stream
        self._opening = opening
        """What the stream starts with when ``connection`` was started already (its handshake
        began in the match exchange, docs/protocol.md §6.2); None: ``connection.start()``."""
        self._rtt = rtt
        """The node's round-trip estimates: the handshake's timeout comes from the
        stranger's, and our pings' pongs and texts' receipts feed it."""
        self._rtt_peer = rtt_peer
        self._probes = RoundTripTimer()
        self._out = stream
        """Where our frames go: the chat stream, then the move stream once our Moved is out."""
        self._in = stream
        """Where we read: the chat stream, then the move stream once the stranger's Moved came."""
        self._move_stream = None
        self._move_ready = trio.Event()
        self._move_done = False
        self.path = path
        """How the chat travels now: "direct" or "relayed"."""
        self._open_move_stream = open_move_stream
        self._path_of = path_of or (lambda _stream: "direct")
        self._while_relayed = while_relayed
        self.finished = trio.Event()
        """Set once the chat is over and its streams are closed."""
        self._connection = connection
        self._on_event = on_event
        self._on_established = on_established
        self._write_lock = trio.Lock()
        self._next_id = 1
        self._closing: str | None = None
        self._end: ChatEnd | None = None
        self._error: str | None = None
        """Why the chat failed (``error``), told to the user as an Error event."""
        self._cancel = trio.CancelScope()
        self._liveness = trio.CancelScope(deadline=math.inf)
        self._writers: set[trio.CancelScope] = set()
        """Writes made from the user's tasks: cancelled when the chat ends."""
        self.established = trio.Event()
        self._can_encrypt = trio.Event()
        self._flood: TokenBucket | None = None
        """The stranger's message budget (safety/limits.py), from its first message."""

    # -- ending ------------------------------------------------------------------------

    def _finish(self, end: ChatEnd) -> None:
        """End the chat with ``end`` (the first end wins; after our bye, ours does)."""
        if self._end is None and self._closing is None:
            self._end = end
        self._cancel.cancel()
        for scope in self._writers:
            scope.cancel()

    def _fail(self, exc: BaseException) -> None:
        """Turn any failure inside the chat into its end (never re-raised)."""
        if isinstance(exc, _WriteFailed):
            logger.info("chat write failed: %s", exc)
            self._finish(exc.end)
        elif isinstance(exc, StreamEnded):  # the stream ended or was reset
            logger.info("chat stream ended: %s", exc)
            self._finish(_DISCONNECTED)
        elif isinstance(exc, StrangersError):  # bad bytes: a malformed, forged or replayed frame
            logger.info("chat closed after a protocol error: %s", exc)
            self._error = self._error or f"chat closed: {exc}"
            self._finish(_ERROR)
        else:  # a bug of ours, or of a library: this chat only
            logger.debug("chat failed unexpectedly", exc_info=exc)
            self._error = self._error or f"chat closed after an internal error ({type(exc).__name__})"
            self._finish(_ERROR)

    # -- writing -------------------------------------------------------------------------

    async def _write(self, make: Callable[[], bytes], timeout: float = WRITE_TIMEOUT) -> None:
        """Write what ``make()`` returns; it runs under the write lock, so frames keep the
        ratchet's order.  Any failure raises :class:`_WriteFailed` (the chat is then over:
        a frame may have been written in part)."""
        try:
            with trio.fail_after(timeout):
                async with self._write_lock:
                    data = make()  # its errors are the protocol's, not the stream's
                    if data:
                        try:
                            await self._out.write(data)
                        except trio.Cancelled:
                            raise
                        except Exception as exc:  # libp2p stream errors of every kind
                            raise _WriteFailed(
                                _DISCONNECTED, f"the stranger has disconnected ({exc!r})"
                            ) from None
        except trio.TooSlowError:
            raise _WriteFailed(_TIMEOUT, f"the stranger stopped reading for {timeout:g} s") from None

    def _send_if_open(self, message: Ping | Delivered | Typing) -> bytes:
        """The bytes of ``message``, or nothing if the chat closed meanwhile (a bye crossed it)."""
        if self._connection.state is not ConnectionState.OPEN:
            return b""
        return self._connection.send(message)

    def _send_probe(self, ping: Ping) -> bytes:
        data = self._send_if_open(ping)
        if data:
            self._probes.sent(("ping", ping.n), trio.current_time())
        return data

    def _answered(self, probe: tuple[str, int]) -> None:
        """A pong or a receipt came: one round trip's sample for the stranger's estimate."""
        now = trio.current_time()
        elapsed = self._probes.answered(probe, now)
        if elapsed is not None and self._rtt is not None:
            self._rtt.observe(self._rtt_peer, elapsed, now)

    async def _write_from_user(self, make: Callable[[], bytes]) -> None:
        """A write from a task that is not ours: it ends with the chat, and a failure ends the chat."""
        if self._end is not None or self._cancel.cancel_called:
            raise _WriteFailed(self._end or _DISCONNECTED, "the chat is over")
        scope = trio.CancelScope()
        self._writers.add(scope)
        try:
            with scope:
                await self._write(make)
        except _WriteFailed as exc:
            self._finish(exc.end)
            raise
        finally:
            self._writers.discard(scope)
        if scope.cancelled_caught:
            raise _WriteFailed(self._end or _DISCONNECTED, "the chat ended")

    async def send_text(self, text: str) -> int:
        """Encrypt and send ``text``; returns its id (for the delivered receipt).

        Raises :class:`~strangers.errors.LocalProtocolError` if we are not
        chatting, or if the message could not be written (the chat then ends).
        """
        if (self._closing is not None or self._end is not None
                or self._connection.state is not ConnectionState.OPEN):
            raise LocalProtocolError("you are not chatting with anyone right now")
        message = Text(self._next_id, text)  # LocalProtocolError if too long
        self._next_id += 1

        def make() -> bytes:
            data = self._connection.send(message) + self._connection.data_to_send()
            self._probes.sent(("text", message.id), trio.current_time())
            return data

        try:
            await self._write_from_user(make)
        except _WriteFailed as exc:
            raise LocalProtocolError(f"message {message.id} was not sent: {exc}") from None
        return message.id

    async def send_typing(self, active: bool) -> None:
        """Tell the stranger we (stopped) typing; best effort."""
        if self._connection.state is not ConnectionState.OPEN or self._closing or self._end:
            return
        try:
            await self._write_from_user(lambda: self._send_if_open(Typing(active)))
        except (_WriteFailed, LocalProtocolError) as exc:
            logger.debug("typing not sent: %s", exc)

    async def offer_keep(self) -> None:
        """Offer the stranger to keep in touch (the contact follows only if it offers too)."""
        if (self._closing is not None or self._end is not None
                or self._connection.state is not ConnectionState.OPEN):
            raise LocalProtocolError("you are not chatting with anyone right now")
        if self._on_contact is None:
            raise LocalProtocolError("this chat is with a kept contact already")
        messages = self.keep.offer()  # LocalProtocolError if offered already

        def make() -> bytes:
            return b"".join(self._connection.send(m) for m in messages) + self._connection.data_to_send()

        try:
            await self._write_from_user(make)
        except _WriteFailed as exc:
            raise LocalProtocolError(f"the offer was not sent: {exc}") from None
        if self.keep.state is KeepState.OFFERED:
            await self._on_event(events.KeepOffered())

    async def _receive_keep(self, message: Keep | Contact) -> None:
        if self._on_contact is None:
            raise RemoteProtocolError("the contact sent a keep-in-touch message again")
        replies = self.keep.receive(message)  # RemoteProtocolError: the chat ends
        if replies:
            await self._write(lambda: b"".join(
                self._connection.send(m) for m in replies
                if self._connection.state is ConnectionState.OPEN))
        if self.keep.state is KeepState.ASKED:
            await self._on_event(events.KeepAsked())
        if self.keep.contact is not None and isinstance(message, Contact):
            await self._on_contact(self.keep.contact)

    async def close(self, reason: str) -> None:
        """Say goodbye (``reason``: "quit" or "next") and end the chat."""
        if self._closing is not None:
            return
        self._closing = reason
        if self._end is None and self._connection.state is ConnectionState.OPEN:
            # In the first instant of a chat the responder cannot encrypt yet
            # (the initiator's Ready is on its way): wait for it briefly so
            # the stranger hears our goodbye instead of a bare disconnection.
            with trio.move_on_after(BYE_WAIT):
                await self._can_encrypt.wait()
            try:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await self._write_from_user(lambda: self._connection.send(Bye(ByeReason(reason))))
            except (_WriteFailed, LocalProtocolError) as exc:  # the stranger may be gone already
                logger.debug("bye not sent: %s", exc)
        self._cancel.cancel()

    # -- running -------------------------------------------------------------------------

    async def run(self) -> ChatEnd:
        """Handshake, then relay events until the chat ends; returns why it ended.

        Never raises, except ``trio.Cancelled`` when the caller is cancelled.
        """
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guarded, self._read_loop)
                    nursery.start_soon(self._guarded, self._keepalive)
                    if self.path == "relayed":
                        nursery.start_soon(self._guarded, self._relayed_tasks)
            end = self._end if self._end is not None else ChatEnd(self._closing or "quit", True)
            if self._end is None:
                self._end = end
        finally:
            for scope in self._writers:
                scope.cancel()
            failed = self._end is not None and self._end.reason in ("error", "timeout")
            await self._close_stream(reset=failed or self._end is None)
            self.finished.set()
        if end.reason == "error" and self._error:
            try:
                await self._on_event(events.Error(self._error))
            except Exception:  # the consumer itself failed: nobody left to tell
                logger.debug("chat error not reported", exc_info=True)
        return end

    async def _guarded(self, task: Callable[[], Awaitable[ChatEnd | None]]) -> None:
        try:
            end = await task()
        except Exception as exc:
            self._fail(exc)
        else:
            if end is not None:
                self._finish(end)

    async def _close_stream(self, *, reset: bool) -> None:
        streams = [self._stream] if self._move_stream is None else [self._stream, self._move_stream]
        for stream in streams:
            if reset:
                await reset_quietly(stream, CLOSE_TIMEOUT)
                continue
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                try:
                    await stream.close()
                except Exception as exc:  # already reset by the peer
                    logger.debug("chat stream close: %r", exc)

    async def _keepalive(self) -> None:
        await self.established.wait()
        counter = 0
        while True:
            await trio.sleep(PING_INTERVAL)
            if self._connection.state is not ConnectionState.OPEN:
                return
            counter += 1
            await self._write(functools.partial(self._send_probe, Ping(counter)))

    async def _read(self) -> bytes:
        try:
            return await read_some(self._in, MAX_FRAME + 4)
        except (trio.Cancelled, StreamEnded):
            raise
        except Exception as exc:  # libp2p raises more than StreamError on a broken connection
            raise StreamFailed(f"stream failed: {exc!r}") from None

    async def _read_loop(self) -> ChatEnd:
        """Handshake and relay; everything here, writes included, is under the liveness deadline."""
        now = trio.current_time()
        handshake = (HANDSHAKE_TIMEOUT if self._rtt is None
                     else self._rtt.timeout(self._rtt_peer, now, CHAT_HANDSHAKE))
        self._liveness.deadline = now + handshake
        with self._liveness:
            opening = self._opening
            await self._write(self._connection.start if opening is None else (lambda: opening),
                              timeout=handshake)
            while True:
                data = await self._read()
                if self.established.is_set():
                    self._liveness.deadline = trio.current_time() + IDLE_TIMEOUT
                self._connection.receive_data(data)
                end = await self._handle_events()
                if end is not None:
                    return end
        logger.info("chat timed out (%s)",
                    "idle" if self.established.is_set() else "handshake stalled")
        return _TIMEOUT

    async def _handle_events(self) -> ChatEnd | None:
        while True:
            event = self._connection.next_event()
            if self._connection.can_encrypt:
                self._can_encrypt.set()
            await self._write(self._connection.data_to_send)
            if event is NEED_DATA:
                return None
            if event is CLOSED:
                return _DISCONNECTED
            end = await self._dispatch(event)
            if end is not None:
                return end

    async def _dispatch(self, event) -> ChatEnd | None:
        if isinstance(event, Established):
            self.established.set()
            self._liveness.deadline = trio.current_time() + IDLE_TIMEOUT
            await self._on_established(event.safety_code)
        elif isinstance(event, (Text, Typing)) and not self._within_rate():
            if self._flood is not None and self._flood.cooling_until > trio.current_time():
                self._error = "chat closed: the stranger sent messages faster than anyone types"
                return _ERROR
            logger.info("stranger over its message rate: %s dropped", type(event).__name__)
        elif isinstance(event, Text):
            await self._on_event(events.MessageReceived(event.id, event.text))
            await self._write(lambda: self._send_if_open(Delivered(event.id)))
        elif isinstance(event, Delivered):
            self._answered(("text", event.id))
            await self._on_event(events.Delivered(event.id))
        elif isinstance(event, Typing):
            await self._on_event(events.Typing(event.active))
        elif isinstance(event, Bye):
            return ChatEnd(str(event.reason), False)
        elif isinstance(event, Moved):
            await self._read_from_move_stream()
        elif isinstance(event, (Keep, Contact)):
            await self._receive_keep(event)
        elif isinstance(event, Pong):
            self._answered(("ping", event.n))
        return None

    def _within_rate(self) -> bool:
        """Whether the stranger's message (text or typing) is within its budget."""
        now = trio.current_time()
        if self._flood is None:
            self._flood = TokenBucket.full(MESSAGES, now)
        return self._flood.take(now) is Verdict.ALLOW

    # -- moving to another stream (docs/protocol.md §6.9) --------------------------------

    async def _relayed_tasks(self) -> None:
        """While the chat is relayed: the hole punch (``while_relayed``) and, for the
        initiator, the move once a direct stream can be opened."""
        await self.established.wait()
        async with trio.open_nursery() as nursery:
            if self._while_relayed is not None:
                nursery.start_soon(self._quietly, "hole punch", self._while_relayed)
            if self._open_move_stream is not None and self._connection.can_move:
                nursery.start_soon(self._guarded, self._move)

    @staticmethod
    async def _quietly(what: str, task: Callable[[], Awaitable[object]]) -> None:
        """A best-effort task: its failure leaves the chat where it is (on the relay)."""
        try:
            await task()
        except Exception as exc:
            logger.info("chat %s failed, the chat stays on the relay: %r", what, exc)

    async def _move(self) -> None:
        """The initiator's side of the move: open, write the opening, then Moved."""
        assert self._open_move_stream is not None
        try:
            stream = await self._open_move_stream()
        except Exception as exc:
            logger.info("no stream to move the chat to, it stays on the relay: %r", exc)
            return
        if stream is None or self._end is not None or self._cancel.cancel_called:
            if stream is not None:
                await reset_quietly(stream, CLOSE_TIMEOUT)
            return
        try:
            with trio.fail_after(WRITE_TIMEOUT):
                async with self._write_lock:
                    if not self._connection.can_move:
                        raise LocalProtocolError("the chat can no longer move")
                    await stream.write(self._connection.move_opening())
                    self._adopt(stream)
                    # Moved is the last frame on the old stream: written under the lock,
                    # and the writer switches before the lock is released.
                    await self._out.write(self._connection.send(Moved()))
                    self._out = stream
        except trio.Cancelled:
            raise
        except Exception as exc:  # the stream's errors, a timeout, a chat that ended
            if self._move_stream is None:  # nothing was said on the old stream: stay there
                await reset_quietly(stream, CLOSE_TIMEOUT)
                logger.info("chat move not started, it stays on the relay: %r", exc)
                return
            raise _WriteFailed(_DISCONNECTED, f"the move failed: {exc!r}") from None
        logger.info("chat: our Moved is out, writing on the new stream")
        await self._maybe_moved()

    def _adopt(self, stream) -> None:
        self._move_stream = stream
        self._move_ready.set()

    async def adopt_move_stream(self, stream) -> None:
        """The responder's side: ``stream`` came from the stranger to carry this chat on.

        Checks its opening, sends our Moved on the old stream and writes on the new
        one from then on.  A bad opening resets ``stream`` and the chat goes on.
        Returns when the chat is over (the stream handler owns the stream until then).
        """
        try:
            with trio.fail_after(MOVE_TIMEOUT):
                head = await read_exactly(stream, 4)
                size = int.from_bytes(head, "big")
                if not 1 <= size <= MAX_OPENING:
                    raise RemoteProtocolError(f"a move stream opening of {size} bytes")
                decoder = FrameDecoder()
                decoder.feed(head + await read_exactly(stream, size))
                frame = decoder.next_frame()
        except (trio.TooSlowError, StrangersError) as exc:
            logger.info("move stream refused: %r", exc)
            await reset_quietly(stream, CLOSE_TIMEOUT)
            return
        try:
            with trio.fail_after(WRITE_TIMEOUT):
                async with self._write_lock:
                    if self._end is not None or self._connection.state is not ConnectionState.OPEN:
                        raise LocalProtocolError("the chat is over")
                    self._connection.accept_move(frame)
                    self._adopt(stream)
                    # as in _move: Moved last on the old stream, the switch under the lock
                    await self._out.write(self._connection.send(Moved()))
                    self._out = stream
        except trio.Cancelled:
            raise
        except StrangersError as exc:  # a bad opening, or the chat ended meanwhile
            logger.info("move stream refused: %r", exc)
            if self._move_stream is not stream:
                await reset_quietly(stream, CLOSE_TIMEOUT)
            return
        except Exception as exc:  # the old stream broke under our Moved: the chat is over
            self._finish(_DISCONNECTED if not isinstance(exc, trio.TooSlowError) else _TIMEOUT)
            logger.info("chat move failed: %r", exc)
            await self.finished.wait()
            return
        logger.info("chat: our Moved is out, writing on the new stream")
        await self._maybe_moved()
        await self.finished.wait()

    async def _read_from_move_stream(self) -> None:
        """The stranger's Moved arrived: read its move stream from now on."""
        with trio.move_on_after(MOVE_TIMEOUT):
            await self._move_ready.wait()
        if self._move_stream is None:
            raise StreamFailed(f"the stranger moved the chat, but no move stream came in"
                               f" {MOVE_TIMEOUT:g} s")
        self._in = self._move_stream
        await self._maybe_moved()

    async def _maybe_moved(self) -> None:
        """Once both directions moved: close the old stream and tell the user."""
        moved = self._move_stream
        if self._move_done or moved is None or not (self._in is moved and self._out is moved):
            return  # our Moved is not fully written yet, or the stranger's not read yet
        self._move_done = True
        old = self._stream
        with trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await old.close()
            except Exception as exc:
                logger.debug("old chat stream close: %r", exc)
        path = self._path_of(self._move_stream)
        logger.info("chat moved to a new stream (%s)", path)
        if path != self.path:
            self.path = path
            await self._on_event(events.PathChanged(path))
