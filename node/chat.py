"""The chat adapter: moves bytes between a libp2p stream and a ChatConnection.

All protocol decisions live in :mod:`strangers.crypto.session`; this module
only reads, writes, times out and reports.  One :class:`ChatSession` is one
chat on its own stream (``/strangers/chat/2.0.0``).

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from strangers.crypto.frames import MAX_FRAME, ByeReason
from strangers.crypto.session import (
    CLOSED,
    NEED_DATA,
    Bye,
    ChatConnection,
    ConnectionState,
    Delivered,
    Established,
    Ping,
    Pong,
    Text,
    Typing,
)
from strangers.errors import LocalProtocolError, StrangersError
from strangers.node.libp2p.streamio import StreamEnded, StreamFailed, read_some, reset_quietly

from . import events

logger = logging.getLogger(__name__)

CHAT_PROTOCOL = "/strangers/chat/2.0.0"
HANDSHAKE_TIMEOUT = 5.0
"""From the stream's opening to ``Established`` (a stalled handshake ends the chat)."""
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
    ) -> None:
        self._stream = stream
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
                            await self._stream.write(data)
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
            return self._connection.send(message) + self._connection.data_to_send()

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
            end = self._end if self._end is not None else ChatEnd(self._closing or "quit", True)
            if self._end is None:
                self._end = end
        finally:
            for scope in self._writers:
                scope.cancel()
            failed = self._end is not None and self._end.reason in ("error", "timeout")
            await self._close_stream(reset=failed or self._end is None)
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
        if reset:
            await reset_quietly(self._stream, CLOSE_TIMEOUT)
            return
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self._stream.close()
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
            await self._write(functools.partial(self._send_if_open, Ping(counter)))

    async def _read(self) -> bytes:
        try:
            return await read_some(self._stream, MAX_FRAME + 4)
        except (trio.Cancelled, StreamEnded):
            raise
        except Exception as exc:  # libp2p raises more than StreamError on a broken connection
            raise StreamFailed(f"stream failed: {exc!r}") from None

    async def _read_loop(self) -> ChatEnd:
        """Handshake and relay; everything here, writes included, is under the liveness deadline."""
        self._liveness.deadline = trio.current_time() + HANDSHAKE_TIMEOUT
        with self._liveness:
            await self._write(self._connection.start, timeout=HANDSHAKE_TIMEOUT)
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
        elif isinstance(event, Text):
            await self._on_event(events.MessageReceived(event.id, event.text))
            await self._write(lambda: self._send_if_open(Delivered(event.id)))
        elif isinstance(event, Delivered):
            await self._on_event(events.Delivered(event.id))
        elif isinstance(event, Typing):
            await self._on_event(events.Typing(event.active))
        elif isinstance(event, Bye):
            return ChatEnd(str(event.reason), False)
        elif isinstance(event, Pong):
            pass
        return None
