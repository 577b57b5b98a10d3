"""The page's guard (cli/web/guard.py), pure: which requests ``strangers web`` answers."""

from __future__ import annotations

import pytest

from strangers.cli import commands
from strangers.cli.web.guard import Guard, Refusal, Route, security_headers
from strangers.cli.web.session import Start, StartCommandError, Stop, known_commands, parse_page_command

TOKEN = "k" * 43
PORT = 41234
GOOD_HOST = [("Host", f"127.0.0.1:{PORT}")]
WS = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Origin", f"http://127.0.0.1:{PORT}")]


@pytest.fixture
def guard() -> Guard:
    return Guard(TOKEN, PORT)


def test_the_url_carries_the_token(guard):
    assert guard.url == f"http://127.0.0.1:{PORT}/?t={TOKEN}"


@pytest.mark.parametrize("path", ["/", "/app.js", "/app.css"])
def test_page_files_with_token(guard, path):
    assert guard.check("GET", f"{path}?t={TOKEN}", GOOD_HOST) == Route(path)
    assert guard.check("HEAD", f"{path}?t={TOKEN}", [("host", f"LOCALHOST:{PORT}")]) == Route(path)


def test_websocket_with_token_and_origin(guard):
    assert guard.check("GET", f"/ws?t={TOKEN}", GOOD_HOST + WS) == Route("/ws", websocket=True)
    localhost = [("Host", f"localhost:{PORT}"), ("Upgrade", "WebSocket"), ("Origin", f"http://localhost:{PORT}")]
    assert guard.check("GET", f"/ws?t={TOKEN}", localhost) == Route("/ws", websocket=True)


@pytest.mark.parametrize("target", ["/", "/?t=", f"/?t={TOKEN[:-1]}", f"/?t={TOKEN}k", f"/?t={TOKEN}&t={TOKEN}",
                                    f"/?token={TOKEN}", f"/ws?t={TOKEN.upper()}"])
def test_without_the_right_token(guard, target):
    verdict = guard.check("GET", target, GOOD_HOST)
    assert isinstance(verdict, Refusal) and verdict.status == 403 and "token" in verdict.reason


@pytest.mark.parametrize("headers", [
    [], [("Host", "evil.example")], [("Host", f"evil.example:{PORT}")], [("Host", "127.0.0.1")],
    [("Host", f"127.0.0.1:{PORT + 1}")], [("Host", f"[::1]:{PORT}")], [("Host", f"127.0.0.2:{PORT}")],
])
def test_wrong_host(guard, headers):
    verdict = guard.check("GET", f"/?t={TOKEN}", headers)
    assert isinstance(verdict, Refusal) and verdict.status == 403 and "Host" in verdict.reason


def test_two_hosts_or_origins_are_refused(guard):
    assert guard.check("GET", f"/?t={TOKEN}", GOOD_HOST * 2).status == 400
    two_origins = GOOD_HOST + [("Origin", f"http://127.0.0.1:{PORT}"), ("origin", "http://evil.example")]
    assert guard.check("GET", f"/?t={TOKEN}", two_origins).status == 400


@pytest.mark.parametrize("origin", ["http://evil.example", "null", f"https://127.0.0.1:{PORT}",
                                    "http://127.0.0.1", f"http://127.0.0.1:{PORT}.evil.example"])
@pytest.mark.parametrize("websocket", [False, True])
def test_other_origins(guard, origin, websocket):
    upgrade = [("Upgrade", "websocket")] if websocket else []
    target = "/ws" if websocket else "/"
    verdict = guard.check("GET", f"{target}?t={TOKEN}", GOOD_HOST + upgrade + [("Origin", origin)])
    assert isinstance(verdict, Refusal) and verdict.status == 403


def test_a_websocket_needs_an_origin(guard):
    verdict = guard.check("GET", f"/ws?t={TOKEN}", GOOD_HOST + [("Upgrade", "websocket")])
    assert isinstance(verdict, Refusal) and "Origin" in verdict.reason


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_requests_started_by_other_sites(guard, site):
    verdict = guard.check("GET", f"/?t={TOKEN}", GOOD_HOST + [("Sec-Fetch-Site", site)])
    assert isinstance(verdict, Refusal) and verdict.status == 403
    for fine in ("none", "same-origin"):
        assert guard.check("GET", f"/?t={TOKEN}", GOOD_HOST + [("Sec-Fetch-Site", fine)]) == Route("/")


def test_methods_paths_and_lengths(guard):
    assert guard.check("POST", f"/?t={TOKEN}", GOOD_HOST).status == 405
    assert guard.check("HEAD", f"/ws?t={TOKEN}", GOOD_HOST + WS).status == 405
    assert guard.check("GET", f"/etc/passwd?t={TOKEN}", GOOD_HOST).status == 404
    assert guard.check("GET", f"/?t={TOKEN}", GOOD_HOST + WS).status == 404  # a WebSocket only at /ws
    assert guard.check("GET", f"/ws?t={TOKEN}", GOOD_HOST).status == 404  # /ws is not a page
    assert guard.check("GET", f"/?t={TOKEN}&x={'a' * 3000}", GOOD_HOST).status == 414


def test_guard_refuses_weak_tokens_and_bad_ports():
    with pytest.raises(ValueError):
        Guard("short", PORT)
    with pytest.raises(ValueError):
        Guard(TOKEN, 0)


def test_security_headers():
    headers = dict(security_headers(PORT))
    policy = headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'; script-src 'self';")
    assert f"connect-src ws://127.0.0.1:{PORT} ws://localhost:{PORT};" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert not [name for name in headers if name.lower().startswith("access-control")]


# -- the page's own commands (cli/web/session.py) ----------------------------------------------


def test_page_commands():
    assert parse_page_command('{"cmd": "start", "interests": ["cinema", " ", "jazz"]}') == Start(("cinema", "jazz"))
    assert parse_page_command('{"cmd": "start"}') == Start(())
    assert parse_page_command(b'{"cmd": "stop"}') == Stop()
    assert parse_page_command('{"cmd": "next"}') == commands.Next()  # everything else: the --json commands
    for bad in ('{"cmd": "start", "interests": "cinema"}', '{"cmd": "start", "interests": [1]}',
                '{"cmd": "start", "interests": ' + str(["x"] * 33).replace("'", '"') + "}"):
        with pytest.raises(StartCommandError):
            parse_page_command(bad)
    with pytest.raises(commands.CommandError, match="not JSON"):
        parse_page_command("{")
    with pytest.raises(commands.CommandError, match="too long"):
        parse_page_command("x" * (commands.MAX_COMMAND_LINE + 1))


def test_known_commands_follow_the_parser():
    known = known_commands()
    assert {"report", "reveal"} <= set(known)
    for name in known:
        commands.parse_command(f'{{"cmd": "{name}"}}')  # each one parses
