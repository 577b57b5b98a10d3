"""Runs one node for the CLI, in the mode asked: JSON lines, a terminal UI, or plain lines."""

from __future__ import annotations

import os
import signal
import sys

import trio

from strangers.node import Node, NodeConfig, events, open_node

from .actions import HelpReply, StatusReply, apply
from .commands import CommandError, Quit, parse_user_line
from .format import format_event, format_status
from .jsonio import pump_events, run_commands

EXIT_OK = 0
EXIT_INTERRUPTED = 130


async def _watch_signals(node: Node, interrupted: list[bool]) -> None:
    """First Ctrl-C / SIGTERM: say bye and stop cleanly. Second: leave at once."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if interrupted:
                os._exit(EXIT_INTERRUPTED)
            interrupted.append(signum == signal.SIGINT)
            await node.quit()


def print_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _pump_text(node: Node) -> None:
    async for event in node.events():
        if isinstance(event, events.Ready) and not node.config.chat:
            print_line(f"Serving the strangers DHT as {event.peer_id}")
            print_line("Others can join through any of:")
            for addr in event.addrs:
                print_line(f"  strangers chat --bootstrap {addr}")
            continue
        line = format_event(event)
        if line is not None:
            print_line(line)


async def _plain_commands(node: Node) -> None:
    """Line mode (stdin is not a terminal): each line is a message or a /command."""
    while True:
        raw = await trio.to_thread.run_sync(sys.stdin.readline, 65537, abandon_on_cancel=True)  # type: ignore[call-arg]
        if not raw:
            await node.quit()
            return
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            command = parse_user_line(line)
        except CommandError as exc:
            await node.emit(events.Error(str(exc)))
            continue
        reply = await apply(node, command)
        if isinstance(reply, HelpReply):
            for help_line in reply.text.splitlines():
                print_line(help_line)
        elif isinstance(reply, StatusReply):
            print_line(format_status(reply.statistics))
        if isinstance(command, Quit):
            return


async def _main(config: NodeConfig, json_mode: bool, interrupted: list[bool]) -> None:
    tui = not json_mode and config.chat and sys.stdin.isatty() and sys.stdout.isatty()
    if tui:
        from .interactive import run_terminal_ui

        await run_terminal_ui(config, interrupted)
        return
    async with open_node(config) as node, trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, node, interrupted)
        nursery.start_soon(pump_events if json_mode else _pump_text, node)
        if config.chat:
            await (run_commands(node) if json_mode else _plain_commands(node))
        else:
            await trio.sleep_forever()


def run_session(config: NodeConfig, *, json_mode: bool) -> int:
    interrupted: list[bool] = []
    trio.run(_main, config, json_mode, interrupted)
    return EXIT_INTERRUPTED if interrupted and interrupted[0] else EXIT_OK
