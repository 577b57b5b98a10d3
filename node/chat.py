"""The chat adapter: moves bytes between a libp2p stream and a ChatConnection.

All protocol decisions live in :mod:`strangers.crypto.session`; this module
only reads, writes, times out and reports.  One :class:`ChatSession` is one
chat on its own stream (``/strangers/chat/1.0.0``).

Liveness: a chat whose stranger vanished without a word (process killed,
machine asleep, network gone) would look open for ever, so we ping every
:data:`PING_INTERVAL` seconds and give up after :data:`IDLE_TIMEOUT` seconds
without a byte.  A killed process is usually noticed at once anyway, when its
kernel closes the TCP connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from strangers.crypto.frames import MAX_FRAME
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
from strangers.node.libp2p.streamio import StreamEnded, read_some, reset_quietly

from . import events

logger = logging.getLogger(__name__)

CHAT_PROTOCOL = "/strangers/chat/1.0.0"
HANDSHAKE_TIMEOUT = 5.0
PING_INTERVAL = 5.0
IDLE_TIMEOUT = 15.0
WRITE_TIMEOUT = 10.0
BYE_WAIT = 1.0


@dataclass(frozen=True)
class ChatEnd:
    """Why a chat ended."""

    reason: str
    by_us: bool


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
        self._cancel = trio.CancelScope()
        self.established = trio.Event()
        self._can_encrypt = trio.Event()

    # -- writing -----------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        async with self._write_lock:
            with trio.fail_after(WRITE_TIMEOUT):
                await self._stream.write(data)

    async def send_text(self, text: str) -> int:
        """Encrypt and send ``text``; returns its id (for the delivered receipt)."""
        if self._closing is not None or self._connection.state is not ConnectionState.OPEN:
            raise LocalProtocolError("you are not chatting with anyone right now")
        message = Text(self._next_id, text)
        data = self._connection.send(message)
        self._next_id += 1
        try:
            await self._write(data + self._connection.data_to_send())
        except (StrangersError, trio.TooSlowError, OSError) as exc:
            raise LocalProtocolError(
                f"message {message.id} was not sent: the stranger is unreachable ({exc})"
            ) from None
        except Exception as exc:  # libp2p stream errors
            raise LocalProtocolError(
                f"message {message.id} was not sent: the stranger has disconnected ({exc!r})"
            ) from None
        return message.id

    async def send_typing(self, active: bool) -> None:
        if self._connection.state is not ConnectionState.OPEN or self._closing:
            return
        try:
            await self._write(self._connection.send(Typing(active)))
        except Exception as exc:  # best effort: typing is not worth an error
            logger.debug("typing not sent: %r", exc)

    async def close(self, reason: str) -> None:
        """Say goodbye (``reason``: "quit" or "next") and end the chat."""
        if self._closing is not None:
            return
        self._closing = reason
        if self._connection.state is ConnectionState.OPEN:
            # In the first instant of a chat the responder cannot encrypt yet
            # (the initiator's Ready is on its way): wait for it briefly so
            # the stranger hears our goodbye instead of a bare disconnection.
            with trio.move_on_after(BYE_WAIT):
                await self._can_encrypt.wait()
            try:
                with trio.move_on_after(1.0):
                    await self._write(self._connection.send(Bye(reason)))
            except Exception as exc:  # the stranger may be gone already
                logger.debug("bye not sent: %r", exc)
        self._cancel.cancel()

    # -- running -------------------------------------------------------------------

    async def run(self) -> ChatEnd:
        """Handshake, then relay events until the chat ends; returns why it ended."""
        try:
            with self._cancel:
                end = await self._run()
                if self._closing is not None:
                    # we said bye; whatever the stream did next is our doing
                    return ChatEnd(self._closing, True)
                return end
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                try:
                    await self._stream.close()
                except Exception:  # already reset by the peer
                    pass
        return ChatEnd(self._closing or "quit", True)

    async def _run(self) -> ChatEnd:
        try:
            await self._write(self._connection.start())
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keepalive)
                end = await self._read_loop()
                nursery.cancel_scope.cancel()
            return end
        except (StreamEnded, trio.BrokenResourceError, trio.ClosedResourceError):
            return ChatEnd("disconnected", False)
        except trio.TooSlowError:
            return ChatEnd("timeout", False)
        except StrangersError as exc:
            logger.info("chat closed after a protocol error: %s", exc)
            await self._reset()
            await self._on_event(events.Error(f"chat closed: {exc}"))
            return ChatEnd("error", False)

    async def _reset(self) -> None:
        await reset_quietly(self._stream, 1.0)

    async def _keepalive(self) -> None:
        await self.established.wait()
        counter = 0
        while True:
            await trio.sleep(PING_INTERVAL)
            counter += 1
            if self._connection.state is not ConnectionState.OPEN:
                return
            try:
                await self._write(self._connection.send(Ping(counter)))
            except Exception as exc:  # the read loop notices the end
                logger.debug("ping not sent: %r", exc)
                return

    async def _read_loop(self) -> ChatEnd:
        handshake_deadline = trio.current_time() + HANDSHAKE_TIMEOUT
        while True:
            deadline = (trio.current_time() + IDLE_TIMEOUT if self.established.is_set()
                        else handshake_deadline)
            with trio.fail_at(deadline):
                try:
                    data = await read_some(self._stream, MAX_FRAME + 4)
                except Exception as exc:
                    if isinstance(exc, (trio.Cancelled, trio.TooSlowError)):
                        raise
                    raise StreamEnded(f"stream failed: {exc!r}") from None
            self._connection.receive_data(data)
            while True:
                event = self._connection.next_event()
                if self._connection.can_encrypt:
                    self._can_encrypt.set()
                await self._write(self._connection.data_to_send())
                if event is NEED_DATA:
                    break
                if event is CLOSED:
                    return ChatEnd("disconnected", False)
                end = await self._dispatch(event)
                if end is not None:
                    return end

    async def _dispatch(self, event) -> ChatEnd | None:
        if isinstance(event, Established):
            self.established.set()
            await self._on_established(event.safety_code)
        elif isinstance(event, Text):
            await self._on_event(events.MessageReceived(event.id, event.text))
            await self._write(self._connection.send(Delivered(event.id)))
        elif isinstance(event, Delivered):
            await self._on_event(events.Delivered(event.id))
        elif isinstance(event, Typing):
            await self._on_event(events.Typing(event.active))
        elif isinstance(event, Bye):
            return ChatEnd(str(event.reason), False)
        elif isinstance(event, Pong):
            pass
        return None
