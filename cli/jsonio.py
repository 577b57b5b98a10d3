"""``--json``: the chat session for programs, one JSON object per line."""

from __future__ import annotations

import json
import sys

import trio

from strangers.node import Node, events

from . import commands
from .actions import StatusReply, apply
from .format import event_to_json, status_to_json


def print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def pump_events(node: Node) -> None:
    """Print every event of ``node`` as a JSON line."""
    async for event in node.events():
        print_json(event_to_json(event))


async def _read_line() -> bytes:
    return await trio.to_thread.run_sync(  # type: ignore[call-arg]  # trio has abandon_on_cancel; mypy misreads its Unpack signature
        sys.stdin.buffer.readline, commands.MAX_COMMAND_LINE + 1, abandon_on_cancel=True
    )


async def run_commands(node: Node) -> None:
    """Read commands from stdin until quit or end of input."""
    while True:
        line = await _read_line()
        if not line:
            await node.quit()
            return
        if len(line) > commands.MAX_COMMAND_LINE:
            # drop the rest of an over-long line
            while line and not line.endswith(b"\n"):
                line = await _read_line()
            await node.emit(events.Error(f"command line too long (at most {commands.MAX_COMMAND_LINE} bytes)"))
            continue
        if not line.strip():
            continue
        try:
            command = commands.parse_command(line)
        except commands.CommandError as exc:
            await node.emit(events.Error(str(exc)))
            continue
        reply = await apply(node, command)
        if isinstance(reply, StatusReply):
            print_json(status_to_json(reply.peer_id, reply.statistics))
        if isinstance(command, commands.Quit):
            return
