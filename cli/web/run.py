"""Runs ``strangers web``: the server, the browser, the signals."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import webbrowser

import trio

from strangers.errors import ConfigError
from strangers.node import NodeConfig

from .guard import Guard
from .server import PageServer
from .session import WebSession

EXIT_OK = 0
EXIT_INTERRUPTED = 130
HOST = "127.0.0.1"
"""Loopback only: the page is for the person at this computer."""


def _say(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


async def _open_listener(port: int) -> trio.SocketListener:
    try:
        listeners = await trio.open_tcp_listeners(port, host=HOST)
    except OSError as exc:
        raise ConfigError(f"cannot serve the page on {HOST}:{port}: {exc.strerror or exc}") from None
    return listeners[0]


async def _watch_signals(session: WebSession, stop: trio.CancelScope, interrupted: list[bool]) -> None:
    """First Ctrl-C / SIGTERM: say bye to the stranger and stop. Second: leave at once."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if interrupted:
                os._exit(EXIT_INTERRUPTED)
            interrupted.append(signum == signal.SIGINT)
            with trio.move_on_after(3):
                await session.close()
            stop.cancel()


async def _main(config: NodeConfig, port: int, open_browser: bool, interrupted: list[bool]) -> None:
    listener = await _open_listener(port)
    bound = listener.socket.getsockname()[1]
    guard = Guard(secrets.token_urlsafe(32), bound)
    async with trio.open_nursery() as nursery:
        session = WebSession(config, nursery)
        server = PageServer(guard, session)
        nursery.start_soon(_watch_signals, session, nursery.cancel_scope, interrupted)
        nursery.start_soon(server.serve, [listener])
        _say(f"Your chat page: {guard.url}")
        _say("(keep this address to yourself: it lets whoever has it chat as you; Ctrl-C stops strangers)")
        if open_browser and not _graphical():
            _say("No graphical browser here (no display): open the address above in one.")
        elif open_browser:
            # webbrowser may block on some platforms while it starts the browser
            opened = await trio.to_thread.run_sync(webbrowser.open, guard.url)
            if not opened:
                _say("No browser could be opened here: open the address above yourself.")


def _graphical() -> bool:
    """Whether ``webbrowser`` would open a window, not a text browser taking over this terminal."""
    if os.environ.get("BROWSER") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_web(config: NodeConfig, *, port: int = 0, open_browser: bool = True) -> int:
    if not 0 <= port < 65536:
        raise ConfigError(f"--port must be between 0 and 65535, got {port!r}")
    interrupted: list[bool] = []
    trio.run(_main, config, port, open_browser, interrupted)
    return EXIT_INTERRUPTED if interrupted and interrupted[0] else EXIT_OK
