"""Who may talk to the page's server: pure checks of one HTTP request (no I/O).

The page's server listens on 127.0.0.1 only, but that alone does not keep
other programs of this computer and other web sites out:

* a local process (another user's, or anything the user runs) can connect to
  127.0.0.1: every request must carry the **token**, 256 random bits printed
  in the URL only to the user who started ``strangers web``;
* a web site the user visits can make the browser send requests to
  127.0.0.1, and through **DNS rebinding** (``evil.example`` first resolving
  to its own server, then to 127.0.0.1) even read the answers as same-origin:
  the **Host** header must name our own address (``127.0.0.1:PORT`` or
  ``localhost:PORT``), and an **Origin** header, when there is one (always for
  a WebSocket), must be our own origin; the browser's ``Sec-Fetch-Site`` must
  not say the request comes from another site;
* the answers carry no CORS header at all, and a strict Content-Security-Policy
  (:func:`security_headers`).

:meth:`Guard.check` returns a :class:`Route` (serve it) or a
:class:`Refusal` (answer with its status and reason, then close).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

TOKEN_PARAMETER = "t"
"""The query parameter that carries the token: ``http://127.0.0.1:PORT/?t=TOKEN``."""
PAGE_PATHS = frozenset({"/", "/app.js", "/app.css"})
WEBSOCKET_PATH = "/ws"
MAX_TARGET = 2048
"""The longest request target we read (ours are about 60 characters)."""
CROSS_SITE = frozenset({"cross-site", "same-site"})
"""``Sec-Fetch-Site`` values of requests started by another site (another port is the same site)."""


@dataclass(frozen=True)
class Route:
    """An allowed request: serve ``path`` (the WebSocket when ``websocket``)."""

    path: str
    websocket: bool = False


@dataclass(frozen=True)
class Refusal:
    """A refused request: answer ``status`` with ``reason`` as the body, then close."""

    status: int
    reason: str


class Guard:
    """The checks for one server: its port and its token."""

    def __init__(self, token: str, port: int) -> None:
        if len(token) < 32:
            raise ValueError(f"a token of {len(token)} characters is too easy to guess")
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port!r}")
        self.token = token
        self.port = port
        self.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
        self.origins = frozenset(f"http://{host}" for host in self.hosts)

    @property
    def url(self) -> str:
        """The page's address, token included: what the user opens."""
        return f"http://127.0.0.1:{self.port}/?{TOKEN_PARAMETER}={self.token}"

    def check(self, method: str, target: str, headers: Iterable[tuple[str, str]]) -> Route | Refusal:
        """Whether to answer a request (``headers``: names in any case, values decoded)."""
        fields: dict[str, list[str]] = {}
        for name, value in headers:
            fields.setdefault(name.lower(), []).append(value.strip())
        for name in ("host", "origin", "upgrade"):
            if len(fields.get(name, [])) > 1:
                return Refusal(400, f"more than one {name.title()} header")
        host = fields.get("host", [""])[0].lower()
        if host not in self.hosts:
            return Refusal(403, f"wrong Host {host!r:.80}: this page answers only to 127.0.0.1:{self.port}")
        origin = fields.get("origin", [None])[0]
        upgrade = fields.get("upgrade", [""])[0].lower()
        websocket = upgrade == "websocket"
        if origin is None and websocket:
            return Refusal(403, "a WebSocket without an Origin header")
        if origin is not None and origin.lower() not in self.origins:
            return Refusal(403, f"requests from {origin!r:.80} are not allowed")
        if any(site.lower() in CROSS_SITE for site in fields.get("sec-fetch-site", [])):
            return Refusal(403, "requests started by another site are not allowed")
        if method not in ("GET", "HEAD") or (websocket and method != "GET"):
            return Refusal(405, f"method {method!r:.20} not allowed")
        if len(target) > MAX_TARGET:
            return Refusal(414, "request target too long")
        parts = urlsplit(target)
        given = parse_qs(parts.query).get(TOKEN_PARAMETER, [])
        if len(given) != 1 or not hmac.compare_digest(given[0].encode(), self.token.encode()):
            return Refusal(403, "missing or wrong token: open the address that `strangers web` printed")
        if websocket:
            if parts.path != WEBSOCKET_PATH:
                return Refusal(404, "no WebSocket here")
            return Route(WEBSOCKET_PATH, websocket=True)
        if parts.path not in PAGE_PATHS:
            return Refusal(404, "not found")
        return Route(parts.path)


def security_headers(port: int) -> list[tuple[str, str]]:
    """Headers on every answer: a strict CSP, no sniffing, no framing, no referrer, no caching.

    No ``Access-Control-Allow-*`` header, ever: other origins cannot read
    anything (and the token and Origin checks refuse them first).
    """
    sockets = f"ws://127.0.0.1:{port} ws://localhost:{port}"
    policy = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              f"connect-src {sockets}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]
