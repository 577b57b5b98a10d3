"""Commands reach the node here, and only here: ``apply(node, command)``.

The terminal UI, the plain-line mode and ``--json`` parse their input into
the same :mod:`~strangers.cli.commands` types and hand them to :func:`apply`;
only how the answer is shown differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from strangers.errors import StrangersError
from strangers.node import Node, NodeStatistics, events

from .commands import (
    Block,
    Command,
    Help,
    Keep,
    Next,
    Quit,
    Report,
    Reveal,
    Save,
    Send,
    SetLang,
    SetTyping,
    Status,
    Stop,
)
from .format import HELP


@dataclass(frozen=True)
class StatusReply:
    """The answer to :class:`~strangers.cli.commands.Status`."""

    peer_id: str
    statistics: NodeStatistics


@dataclass(frozen=True)
class HelpReply:
    """The answer to :class:`~strangers.cli.commands.Help`."""

    text: str = HELP


Reply = StatusReply | HelpReply


async def apply(node: Node, command: Command) -> Reply | None:
    """Do ``command``; the answer to a question (status, help), else None.

    A command the node cannot carry out (a message while nobody is there, a
    message too long...) becomes an ``error`` event, as in every interface.
    """
    try:
        match command:
            case Send(text):
                await node.send_text(text)
            case SetTyping(active):
                await node.set_typing(active)
            case Next():
                await node.next()
            case Stop():
                if await node.stop() in ("search", "question"):  # a chat's end says so itself
                    await node.emit(events.Idle())
            case Block():
                await node.block()
            case Quit():
                await node.quit()
            case Reveal():
                await node.reveal()
            case Report(reason):
                await node.report(reason)
            case Save(path):
                await node.save(path)
            case SetLang(lang):
                await node.set_lang(lang)
            case Keep(name):
                await node.keep(name)
            case Status():
                return StatusReply(node.peer_id, node.statistics())
            case Help():
                return HelpReply()
    except StrangersError as exc:
        await node.emit(events.Error(str(exc)))
    return None
