"""``strangers lobby INTEREST``: the public room of one interest, for people (lines) and programs (``--json``).

``--json``: events as JSON lines on stdout (``ready``, ``joined``,
``lobby_message``, ``lobby_sent``, ``members``, ``error``...), commands as
JSON lines on stdin::

    {"cmd": "send", "text": "hi all"}      -> {"event": "lobby_sent", "id": ..., "text": ...}
    {"cmd": "quit"}

    {"cmd": "chat", "peer_id": "12D3KooW..."}  -> (its user accepts) {"event": "matched", ...}
    {"cmd": "accept", "peer_id": ...}   {"cmd": "decline", "peer_id": ...}   (after chat_invited)
    {"cmd": "private", "text": "..."}    {"cmd": "next"}   (the private chat; the lobby stays)

For people: each line typed is said in the room (``//text`` says ``/text``),
or to the stranger during a private chat; ``/chat NICK``, ``/accept NICK``,
``/decline NICK``, ``/lobby TEXT``, ``/next``, ``/members``, ``/help``, ``/quit``. Messages show the sender's nickname,
derived from its peer id. Everything said in a lobby is public: the UI
says so when joining.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import trio

from strangers.errors import StrangersError
from strangers.node import Node, NodeConfig, events, open_node

from .commands import MAX_COMMAND_LINE, CommandError
from .format import _visible, event_to_json, format_event

PUBLIC_NOTICE = ("Lobbies are public: everyone in this room reads what you write, signed "
                 "with your peer id. Say nothing here you would not say in a square.")

LOBBY_HELP = """Lobby commands:
  /members        how many people are in the room, and who spoke lately
  /chat NICK      ask NICK for a private chat (end-to-end encrypted, with a safety code)
  /accept NICK    accept NICK's invitation      /decline NICK   decline it
  /lobby TEXT     say TEXT in the room while you are in a private chat
  /next           leave the private chat (you stay in the room)
  /quit           leave (Ctrl-D or Ctrl-C too)
  /help           this help
Anything else is said to the whole room, in public, or to the stranger while
you are in a private chat (//text sends /text)."""


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class Members:
    pass


@dataclass(frozen=True)
class LobbyHelp:
    pass


@dataclass(frozen=True)
class Invite:
    """Propose a private chat to a member (nickname or peer id)."""

    who: str


@dataclass(frozen=True)
class Answer:
    """Accept or decline a member's invitation."""

    who: str
    accept: bool


@dataclass(frozen=True)
class Private:
    """A message in the private chat (end-to-end encrypted)."""

    text: str


@dataclass(frozen=True)
class EndChat:
    """Leave the private chat (the lobby stays)."""


LobbyCommand = Say | Leave | Members | LobbyHelp | Invite | Answer | Private | EndChat


def parse_lobby_command(line: str | bytes) -> LobbyCommand:
    """One ``--json`` command line."""
    if len(line) > MAX_COMMAND_LINE:
        raise CommandError(f"command line too long ({len(line)} bytes, at most {MAX_COMMAND_LINE})")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CommandError(f"a command must be a JSON object, got {obj!r:.80}")
    cmd = obj.get("cmd")
    if cmd == "send":
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CommandError(f"send needs a non-empty \"text\" string, got {text!r:.80}")
        return Say(text)
    if cmd == "quit":
        return Leave()
    if cmd == "members":
        return Members()
    if cmd in ("chat", "accept", "decline"):
        who = obj.get("peer_id")
        if not isinstance(who, str) or not who.strip():
            raise CommandError(f"{cmd} needs a \"peer_id\" string, got {who!r:.80}")
        return Invite(who) if cmd == "chat" else Answer(who, cmd == "accept")
    if cmd == "private":
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CommandError(f"private needs a non-empty \"text\" string, got {text!r:.80}")
        return Private(text)
    if cmd in ("next", "leave_chat"):
        return EndChat()
    raise CommandError(f"unknown command {cmd!r:.80} "
                       "(send, members, chat, accept, decline, private, next, quit)")


_USER: dict[str, type[Leave | Members | LobbyHelp]] = {
    "/quit": Leave, "/exit": Leave, "/q": Leave, "/members": Members, "/who": Members,
         "/help": LobbyHelp, "/h": LobbyHelp, "/?": LobbyHelp}


def parse_lobby_line(text: str, *, chatting: bool = False) -> LobbyCommand:
    """One line typed by a person; ``chatting``: plain lines go to the private chat."""
    stripped = text.strip()
    if not stripped:
        raise CommandError("cannot send an empty message")
    if stripped.startswith("//"):
        return Private(text.lstrip()[1:]) if chatting else Say(text.lstrip()[1:])
    word, _, rest = stripped.partition(" ")
    if word.lower() in ("/chat", "/accept", "/decline"):
        if not rest.strip():
            raise CommandError(f"{word.lower()} NICK: whom?")
        if word.lower() == "/chat":
            return Invite(rest.strip())
        return Answer(rest.strip(), word.lower() == "/accept")
    if word.lower() in ("/lobby", "/room") and rest.strip():
        return Say(rest)
    if word.lower() in ("/next", "/leave"):
        return EndChat()
    if stripped.startswith("/"):
        command = _USER.get(stripped.split()[0].lower())
        if command is None:
            raise CommandError(f"unknown command {stripped!r:.80}; /help lists them")
        return command()
    return Private(text) if chatting else Say(text)


# -- formatting (pure) ---------------------------------------------------------------

def lobby_event_to_json(event: events.Event) -> dict[str, Any]:
    """The ``--json`` object (the lobby events are in :func:`~.format.event_to_json`)."""
    return event_to_json(event)


def format_lobby_event(event: events.Event, interest: str, my_nick: str = "") -> str | None:
    match event:
        case events.Ready(peer_id, _addrs, _persistent):
            return f"You are {my_nick or 'a stranger'} ({peer_id[-8:]}) in this room."
        case events.LobbyJoined(_topic, _peers):
            return f"You joined the {interest!r} lobby. {PUBLIC_NOTICE}\nType /help for commands."
        case events.LobbyMessage(_id, _sender, nick, text):
            return f"{nick}: {_visible(text)}"
        case events.LobbySent(_id, text):
            return f"you: {_visible(text)}"
        case events.LobbyMembers(count):
            return f"· {count} {'person' if count == 1 else 'people'} in the room"
        case events.Reachability() | events.Advertised() | events.Searching():
            return None
    return format_event(event)


def format_members(node: Node) -> str:
    lobby = node.lobby
    if lobby is None:
        return "! you are not in a lobby"
    names = sorted(lobby.members.values())
    shown = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
    return f"{lobby.count()} in the room" + (f": you, {shown}" if names else " (just you so far)")


# -- running -------------------------------------------------------------------------

def _print(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


async def _apply(node: Node, command: LobbyCommand, json_mode: bool) -> bool:
    """Do ``command``; False once the user leaves."""
    try:
        match command:
            case Say(text):
                await node.send_lobby(text)
            case Leave():
                await node.quit()
                return False
            case Members():
                if json_mode:
                    _print(json.dumps({"event": "members", "count":
                                       node.lobby.count() if node.lobby else 0}))
                else:
                    _print(format_members(node))
            case LobbyHelp():
                _print(LOBBY_HELP)
            case Invite(who):
                await node.invite(who)
            case Answer(who, accept):
                node.answer_invitation(who, accept)
            case Private(text):
                await node.send_text(text)
            case EndChat():
                await node.next()
    except StrangersError as exc:
        await node.emit(events.Error(str(exc)))
    return True


async def _read_line() -> bytes:
    return await trio.to_thread.run_sync(  # type: ignore[call-arg]
        sys.stdin.buffer.readline, MAX_COMMAND_LINE + 1, abandon_on_cancel=True)


async def _commands(node: Node, json_mode: bool) -> None:
    while True:
        raw = await _read_line()
        if not raw:
            await node.quit()
            return
        if len(raw) > MAX_COMMAND_LINE:
            while raw and not raw.endswith(b"\n"):
                raw = await _read_line()
            await node.emit(events.Error(f"line too long (at most {MAX_COMMAND_LINE} bytes)"))
            continue
        if not raw.strip():
            continue
        try:
            command = (parse_lobby_command(raw) if json_mode
                       else parse_lobby_line(raw.decode("utf-8", "replace").rstrip("\n"),
                                             chatting=node.in_chat))
        except CommandError as exc:
            await node.emit(events.Error(str(exc)))
            continue
        if not await _apply(node, command, json_mode):
            return


MAX_LINES_PER_WRITE = 64


def _print_lines(lines: list[str]) -> None:
    if lines:
        _print("\n".join(lines))


def _event_line(event, node: Node, interest: str, json_mode: bool) -> str | None:
    if json_mode:
        return json.dumps(lobby_event_to_json(event), ensure_ascii=False)
    return format_lobby_event(event, interest, node.nick)


async def _pump(node: Node, interest: str, json_mode: bool) -> None:
    """Print the node's events; those waiting together go out in one write.

    Every write to a pipe wakes its reader, which on a busy machine takes
    the CPU from us mid-write (a lobby member's event loop spent ~12 % of
    its busy time in that one write): when several messages arrive at once,
    their lines are written together (at most :data:`MAX_LINES_PER_WRITE`).
    """
    receive = node.events()
    async for event in receive:
        lines = [_event_line(event, node, interest, json_mode)]
        ended = False
        while len(lines) < MAX_LINES_PER_WRITE:
            try:
                event = receive.receive_nowait()
            except trio.WouldBlock:
                break
            except (trio.EndOfChannel, trio.ClosedResourceError):
                ended = True
                break
            lines.append(_event_line(event, node, interest, json_mode))
        _print_lines([line for line in lines if line is not None])
        if ended:
            return


async def run_lobby(config: NodeConfig, interest: str, lane: str, json_mode: bool,
                    interrupted: list[bool]) -> None:
    from .session import _watch_signals

    async with open_node(config, lobby=(interest, lane)) as node, trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, node, interrupted)
        nursery.start_soon(_pump, node, interest, json_mode)
        await _commands(node, json_mode)


def run_lobby_session(config: NodeConfig, interest: str, lane: str, *, json_mode: bool) -> int:
    interrupted: list[bool] = []
    trio.run(run_lobby, config, interest, lane, json_mode, interrupted)
    return 130 if interrupted and interrupted[0] else 0
