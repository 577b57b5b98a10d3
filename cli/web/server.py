"""The page's server: HTTP (h11) for the page's three files, a WebSocket (wsproto) for the session.

h11 and wsproto are sans-IO (the house's model): this module only moves bytes
between a trio socket and them. Every request passes :class:`~.guard.Guard`
first; a refused one gets its status, a one-line reason and a closed
connection. Bounded everywhere: request heads (16 KiB), WebSocket messages
(one command line, 64 KiB), connections at once, what waits to go to a page,
and how long a request may take to arrive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import h11
import trio
import wsproto
import wsproto.events as ws_events
import wsproto.utilities

from .. import commands
from .guard import Guard, Refusal, security_headers
from .session import WebSession

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 32
"""Connections served at once; one more is closed unanswered (a browser opens at most 6)."""
MAX_HEAD = 16 * 1024
RECEIVE_SIZE = 16 * 1024
REQUEST_TIMEOUT = 30.0
"""How long an HTTP connection may sit without a complete request."""
PAGE_QUEUE = 4096
"""Events waiting to go to one page; a page that falls this far behind is disconnected (it can reload)."""
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008

REASONS = {200: b"OK", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
           405: b"Method Not Allowed", 414: b"URI Too Long"}

CONTENT_TYPES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}


def load_asset(name: str) -> bytes:
    """One of the page's files, shipped in the package (``strangers.cli.web/static``)."""
    return resources.files("strangers.cli.web").joinpath("static", name).read_bytes()


class PageServer:
    """Serves the page and its WebSocket on one listening socket."""

    def __init__(self, guard: Guard, session: WebSession) -> None:
        self.guard = guard
        self.session = session
        self._assets = {path: (load_asset(name), kind) for path, (name, kind) in CONTENT_TYPES.items()}
        page, kind = self._assets["/"]  # the page names its script and style with the token
        self._assets["/"] = (page.replace(b"__TOKEN__", guard.token.encode("ascii")), kind)
        self._limit = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def serve(self, listeners: list[trio.SocketListener]) -> None:
        await trio.serve_listeners(self.handle, listeners)

    async def handle(self, stream: trio.SocketStream) -> None:
        """One TCP connection: requests until it closes, or a WebSocket."""
        async with stream:
            try:
                self._limit.acquire_nowait()
            except trio.WouldBlock:  # too many at once: this one is closed unanswered
                logger.info("page connection refused: %d connections already", MAX_CONNECTIONS)
                return
            try:
                await self._serve_connection(stream)
            finally:
                self._limit.release()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        try:
            await self._http(stream)
        except (h11.ProtocolError, wsproto.utilities.ProtocolError) as exc:
            logger.info("page connection closed: %s", exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except trio.TooSlowError:
            logger.info("page connection closed: no request within %s s", REQUEST_TIMEOUT)
        except Exception:  # a bug: this connection ends, the server goes on
            logger.exception("page connection failed")

    async def _http(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        while True:
            with trio.fail_after(REQUEST_TIMEOUT):
                request = await _next_request(stream, conn)
            if request is None:
                return
            target = request.target.decode("latin-1")
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
            method = request.method.decode("latin-1")
            verdict = self.guard.check(method, target, headers)
            if isinstance(verdict, Refusal):
                logger.info("refused %s %s: %s", method, target.split("?")[0], verdict.reason)
                await _respond(stream, conn, verdict.status, verdict.reason.encode() + b"\n",
                               "text/plain; charset=utf-8", self.guard.port, close=True)
                return
            await _finish_request(stream, conn)
            if verdict.websocket:
                await self._websocket(stream, conn, request)
                return
            body, kind = self._assets[verdict.path]
            await _respond(stream, conn, 200, b"" if method == "HEAD" else body, kind, self.guard.port,
                           length=len(body))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _websocket(self, stream: trio.SocketStream, conn: h11.Connection, request: h11.Request) -> None:
        ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        ws.initiate_upgrade_connection(list(request.headers), request.target)
        for event in ws.events():
            if not isinstance(event, ws_events.Request):
                return
        headers = [(name.encode(), value.encode()) for name, value in security_headers(self.guard.port)]
        await stream.send_all(ws.send(ws_events.AcceptConnection(extra_headers=headers)))
        socket = _Socket(stream, ws)
        trailing, _closed = conn.trailing_data
        outbox_send, outbox = trio.open_memory_channel[dict[str, Any]](PAGE_QUEUE)

        def publish(obj: dict[str, Any]) -> None:
            try:
                outbox_send.send_nowait(obj)
            except trio.WouldBlock:  # the page cannot keep up: drop it, it can reload
                outbox_send.close()
            except trio.ClosedResourceError:
                pass

        for obj in self.session.attach(publish):
            publish(obj)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_send_events, socket, outbox, nursery.cancel_scope)
                await self._receive_commands(socket, trailing, publish)
                nursery.cancel_scope.cancel()
        finally:
            self.session.detach(publish)

    async def _receive_commands(self, socket: _Socket, data: bytes, reply: Callable[[dict[str, Any]], None]) -> None:
        """Commands from the page until it closes (``data``: what came with the upgrade request)."""
        message = _Message()
        stream, ws = socket.stream, socket.ws
        while True:
            if not data:
                data = await stream.receive_some(RECEIVE_SIZE)
            ws.receive_data(data if data else None)  # b"": the page hung up
            for event in ws.events():
                if isinstance(event, ws_events.TextMessage):
                    if not message.add(event.data):
                        await socket.send(ws_events.CloseConnection(code=CLOSE_TOO_BIG, reason="command too long"))
                        return
                    if event.message_finished:
                        await self.session.handle(message.take(), reply)
                elif isinstance(event, ws_events.BytesMessage):
                    await socket.send(ws_events.CloseConnection(code=CLOSE_POLICY, reason="commands are text"))
                    return
                elif isinstance(event, ws_events.Ping):
                    await socket.send(event.response())
                elif isinstance(event, ws_events.CloseConnection):
                    if ws.state is wsproto.ConnectionState.REMOTE_CLOSING:
                        await socket.send(event.response())
                    return
            if not data:
                return
            data = b""


class _Message:
    """The pieces of one WebSocket text message, at most one command line long."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> bool:
        self.parts.append(text)
        self.size += len(text)
        return self.size <= commands.MAX_COMMAND_LINE

    def take(self) -> str:
        line = "".join(self.parts)
        self.parts, self.size = [], 0
        return line


class _Socket:
    """A WebSocket's two directions share one stream: one writer at a time (trio refuses two)."""

    def __init__(self, stream: trio.SocketStream, ws: wsproto.WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self._lock = trio.Lock()

    async def send(self, event: ws_events.Event) -> None:
        async with self._lock:
            await self.stream.send_all(self.ws.send(event))


async def _send_events(socket: _Socket, outbox: trio.MemoryReceiveChannel[dict[str, Any]],
                       scope: trio.CancelScope) -> None:
    async for obj in outbox:
        await socket.send(ws_events.TextMessage(data=json.dumps(obj, ensure_ascii=False)))
    scope.cancel()  # the page fell behind: close it


async def _next_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    """The next request's head (None: the client closed the connection)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
            continue
        if isinstance(event, h11.Request):
            return event
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        # Data / EndOfMessage of a request body: our requests have none; skip it


async def _finish_request(stream: trio.SocketStream, conn: h11.Connection) -> None:
    """Read up to the end of the request (ours have no body; h11 bounds what it buffers)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            with trio.fail_after(REQUEST_TIMEOUT):
                conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
            continue
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED:
            return


async def _respond(stream: trio.SocketStream, conn: h11.Connection, status: int, body: bytes, kind: str,
                   port: int, *, close: bool = False, length: int | None = None) -> None:
    headers = [("Content-Type", kind), ("Content-Length", str(len(body) if length is None else length)),
               *security_headers(port)]
    if close:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b"")))
    if body:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
