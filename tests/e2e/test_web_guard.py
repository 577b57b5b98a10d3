"""Who may talk to ``strangers web``: the real executable, refused requests on the wire.

Without the token, with a wrong Host (DNS rebinding) or from another Origin, plain HTTP and
WebSocket alike, the server answers 403 and serves nothing; with them, the page and the
WebSocket work, carry a strict CSP and never a CORS header. Also what a WebSocket that
misbehaves gets (binary frames, over-long commands, bad JSON). One process serves every test
of this module (no node runs before Start, so it needs no network at all).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wsproto
import wsproto.events as ws_events

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webproc import WebProcess  # noqa: E402

pytestmark = pytest.mark.e2e

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def web() -> Iterator[WebProcess]:
    process = WebProcess("-i", "cinema")
    try:
        process.wait_url()
        yield process
    finally:
        process.stop()


def get(web: WebProcess, target: str, headers: dict[str, str] | None = None,
        host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=TIMEOUT)
    try:
        conn.putrequest("GET", target, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{web.port}")
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class Socket:
    """A WebSocket client (wsproto over a plain socket), for exactly what a test sends."""

    def __init__(self, web: WebProcess, target: str, headers: list[tuple[str, str]],
                 host: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", web.port), timeout=TIMEOUT)
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(ws_events.Request(host=host or f"127.0.0.1:{web.port}", target=target,
                                                         extra_headers=headers)))
        self.pending: list = []

    def next_event(self):
        while not self.pending:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
            if not data and not self.pending:
                raise AssertionError("connection closed")
        return self.pending.pop(0)

    def message(self) -> dict:
        text = ""
        while True:
            event = self.next_event()
            assert isinstance(event, ws_events.TextMessage), event
            text += event.data
            if event.message_finished:
                return json.loads(text)

    def send(self, event) -> None:
        self.sock.sendall(self.ws.send(event))

    def close(self) -> None:
        self.sock.close()


def ws_target(web: WebProcess, token: str | None = None) -> str:
    return f"/ws?t={web.token if token is None else token}"


def origin(web: WebProcess, host: str = "127.0.0.1") -> list[tuple[str, str]]:
    return [("Origin", f"http://{host}:{web.port}")]


def test_the_page_with_its_token_is_served_with_a_strict_policy(web):
    status, headers, body = get(web, f"/?t={web.token}")
    assert status == 200 and b"<title>strangers" in body
    assert f"/app.js?t={web.token}".encode() in body
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert f"connect-src ws://127.0.0.1:{web.port} ws://localhost:{web.port}" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert not [name for name in headers if name.startswith("access-control-")]
    for asset in ("app.js", "app.css"):
        status, headers, body = get(web, f"/{asset}?t={web.token}")
        assert status == 200 and body and headers["x-content-type-options"] == "nosniff"
    assert get(web, f"/?t={web.token}", host=f"localhost:{web.port}")[0] == 200


@pytest.mark.parametrize("target", ["/", "/?t=", "/?t=wrong", "/app.js", "/app.css?t=x", "/?T={token}",
                                    "/?t={token}x", "/?t={token}&t={token}"])
def test_no_token_no_page(web, target):
    status, headers, body = get(web, target.format(token=web.token))
    assert status == 403 and b"token" in body
    assert b"<script" not in body and not [name for name in headers if name.startswith("access-control-")]


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1", "127.0.0.1:1",
                                  "localhost", "0.0.0.0:{port}", "[::1]:{port}", "127.0.0.1:{port}.evil.example"])
def test_wrong_host_is_refused_even_with_the_token(web, host):
    """DNS rebinding: a site whose name now resolves to 127.0.0.1 sends its own name as Host."""
    status, _headers, body = get(web, f"/?t={web.token}", host=host.format(port=web.port))
    assert status == 403 and b"Host" in body


@pytest.mark.parametrize("other", ["http://evil.example", "http://127.0.0.1:1", "null",
                                   "http://localhost", "https://127.0.0.1:{port}"])
def test_another_origin_is_refused_even_with_the_token(web, other):
    status, _headers, body = get(web, f"/app.js?t={web.token}", {"Origin": other.format(port=web.port)})
    assert status == 403 and b"not allowed" in body
    status, _headers, _body = get(web, f"/?t={web.token}", {"Sec-Fetch-Site": "cross-site"})
    assert status == 403


def _refused(client: Socket) -> int:
    event = client.next_event()
    assert isinstance(event, ws_events.RejectConnection), event
    return event.status_code


@pytest.mark.parametrize("case", ["no token", "wrong token", "no origin", "other origin", "other port",
                                  "wrong host", "cross-site"])
def test_websocket_refused(web, case):
    headers = origin(web)
    target = ws_target(web)
    host = None
    if case == "no token":
        target = "/ws"
    elif case == "wrong token":
        target = ws_target(web, web.token[:-1] + ("A" if web.token[-1] != "A" else "B"))
    elif case == "no origin":
        headers = []
    elif case == "other origin":
        headers = [("Origin", "http://evil.example")]
    elif case == "other port":
        headers = [("Origin", "http://127.0.0.1:9")]
    elif case == "wrong host":
        host = f"evil.example:{web.port}"
        headers = [("Origin", f"http://evil.example:{web.port}")]
    elif case == "cross-site":
        headers = [*headers, ("Sec-Fetch-Site", "cross-site")]
    client = Socket(web, target, headers, host)
    try:
        assert _refused(client) == 403
    finally:
        client.close()


def test_websocket_carries_the_json_stream(web):
    client = Socket(web, ws_target(web), origin(web, "localhost"))
    try:
        assert isinstance(client.next_event(), ws_events.AcceptConnection)
        hello = client.message()
        assert hello["event"] == "hello" and hello["interests"] == ["cinema"] and hello["running"] is False
        assert {"report", "reveal", "block"} <= set(hello["commands"])
        client.send(ws_events.TextMessage(data='{"cmd": "send", "text": "hi"}'))
        assert "press Start first" in client.message()["message"]
        client.send(ws_events.TextMessage(data="not json"))
        assert client.message() == {"event": "error", "message": "not JSON: Expecting value: line 1 column 1 (char 0)"}
        client.send(ws_events.TextMessage(data='{"cmd": "start", "interests": "cinema"}'))
        assert "a list of at most" in client.message()["message"]
        client.send(ws_events.TextMessage(data='{"cmd": "fly"}'))
        assert client.message()["message"].startswith("unknown command 'fly'")
        client.send(ws_events.Ping(payload=b"p"))
        assert client.next_event() == ws_events.Pong(payload=b"p")
    finally:
        client.close()


@pytest.mark.parametrize("payload", [b"\x00binary", None])
def test_websocket_misbehaving_page_is_closed(web, payload):
    client = Socket(web, ws_target(web), origin(web))
    try:
        assert isinstance(client.next_event(), ws_events.AcceptConnection)
        assert client.message()["event"] == "hello"
        if payload is None:  # one command line is at most 64 KiB, in as many pieces as it likes
            for _ in range(5):
                client.send(ws_events.TextMessage(data="x" * 16384, message_finished=False))
            expected = 1009
        else:
            client.send(ws_events.BytesMessage(data=payload))
            expected = 1008
        event = client.next_event()
        while isinstance(event, ws_events.TextMessage):  # what other tests' pages left in the backlog
            event = client.next_event()
        assert isinstance(event, ws_events.CloseConnection) and event.code == expected
    finally:
        client.close()
    # the server goes on
    assert get(web, f"/?t={web.token}")[0] == 200


def test_start_stop_and_new_interests_over_the_websocket(web):
    """The page's own commands (§7.4) on a node with nobody to meet (no bootstrap, no mDNS)."""
    client = Socket(web, ws_target(web), origin(web))

    def until(name: str) -> dict:
        while True:
            event = client.message()
            if event["event"] == name:
                return event
            assert event["event"] != "error", event

    try:
        assert isinstance(client.next_event(), ws_events.AcceptConnection)
        until("hello")
        client.send(ws_events.TextMessage(data='{"cmd": "start", "interests": ["Cinema"]}'))
        assert until("starting")["interests"] == ["cinema"]
        first = until("ready")["peer_id"]
        assert until("searching")["interests"] == ["cinema"]
        client.send(ws_events.TextMessage(data='{"cmd": "stop"}'))
        until("idle")
        client.send(ws_events.TextMessage(data='{"cmd": "status"}'))
        assert until("status")["state"] == "idle"
        client.send(ws_events.TextMessage(data='{"cmd": "start", "interests": ["cinema"]}'))  # New: same node
        until("searching")
        client.send(ws_events.TextMessage(data='{"cmd": "start", "interests": ["jazz"]}'))  # new interests
        assert until("starting")["interests"] == ["jazz"]
        assert until("ready")["peer_id"] != first  # a new node (no --identity: a new peer id)
        assert until("searching")["interests"] == ["jazz"]
    finally:
        client.close()
    # a page that connects now sees the node running, and what happened since the last Start
    late = Socket(web, ws_target(web), origin(web))
    try:
        assert isinstance(late.next_event(), ws_events.AcceptConnection)
        hello = late.message()
        assert hello["event"] == "hello" and hello["running"] is True and hello["interests"] == ["jazz"]
        replay = [late.message()["event"]]
        while replay[-1] != "searching" and len(replay) < 10:
            replay.append(late.message()["event"])
        assert replay[0] == "starting" and replay[-1] == "searching" and "ready" in replay
    finally:
        late.close()


def test_a_busy_port_is_a_clear_startup_error(web):
    from strangers.testing import run_cli

    result = run_cli("web", "--no-browser", "--no-bootstrap", "--no-mdns", "--port", str(web.port))
    assert result.returncode == 1
    assert f"strangers: error: cannot serve the page on 127.0.0.1:{web.port}" in result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_connections_are_bounded(web):
    """32 connections at once; one more is closed unanswered; the page works again once they go."""
    idle = [socket.create_connection(("127.0.0.1", web.port), timeout=TIMEOUT) for _ in range(32)]
    try:
        extra = socket.create_connection(("127.0.0.1", web.port), timeout=TIMEOUT)
        try:
            extra.sendall(f"GET /?t={web.token} HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n\r\n".encode())
            assert extra.recv(1024) == b""
        except ConnectionResetError:
            pass
        finally:
            extra.close()
    finally:
        for conn in idle:
            conn.close()
    deadline = time.monotonic() + TIMEOUT  # the server notices the closed sockets as it reads them
    while True:
        try:
            if get(web, f"/?t={web.token}")[0] == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "the page was not served again"
        time.sleep(0.05)
