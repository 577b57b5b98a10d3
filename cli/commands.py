"""What a user asks of the node, as commands (pure): parsed from ``--json`` lines
(:func:`parse_command`) and from lines a person types (:func:`parse_user_line`).
Every interface hands the result to :func:`strangers.cli.actions.apply`.

One JSON object per line on stdin::

    {"cmd": "send", "text": "hi"}      -> answered by {"event": "sent", "id": ...}
    {"cmd": "typing", "active": true}
    {"cmd": "next"}
    {"cmd": "stop"}                    -> Omegle's Stop: leave (stranger_left) or stop looking
                                          ({"event": "idle"}); nobody is looked for until next
    {"cmd": "quit"}
    {"cmd": "status"}                  -> {"event": "status", ...}
    {"cmd": "report", "reason": "..."} -> {"event": "reported", "path": ...}
    {"cmd": "block"}                   -> {"event": "blocked", ...}, then stranger_left "blocked"
    {"cmd": "save", "path": "..."}     -> {"event": "saved", "path": ...} (path optional)
    {"cmd": "lang", "lang": "fr"}      -> {"event": "language", "lang": "fr"}
    {"cmd": "keep", "name": "..."}     -> {"event": "keep_offered"}, later maybe "kept"

A bad line raises :class:`CommandError` whose message becomes an ``error`` event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from strangers.errors import StrangersError

MAX_COMMAND_LINE = 65536


class CommandError(StrangersError):
    """A command line that cannot be understood."""


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class SetTyping:
    active: bool


@dataclass(frozen=True)
class Next:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Reveal:
    """Show the last message the word filter hid."""


@dataclass(frozen=True)
class Report:
    """Save a signed report of the stranger's texts (``reason`` may be empty)."""

    reason: str = ""


@dataclass(frozen=True)
class Block:
    """End the chat and never match this stranger again (``/block``)."""


MAX_REASON = 1000
MAX_PATH = 4096


@dataclass(frozen=True)
class Save:
    """Write the conversation to a text file (``path`` None: a new file in the documents dir)."""

    path: str | None = None


@dataclass(frozen=True)
class Keep:
    """Offer the stranger to keep in touch; saved as ``name`` (None: "stranger") if both agree."""

    name: str | None = None


@dataclass(frozen=True)
class SetLang:
    """Search in the language lane ``lang`` (ISO 639-1; "" for none) from now on."""

    lang: str


@dataclass(frozen=True)
class Stop:
    """Omegle's Stop: leave the stranger (or stop looking); nobody is looked for until ``next``."""


@dataclass(frozen=True)
class Help:
    """``/help`` (typed lines only)."""


Command = (Send | SetTyping | Next | Stop | Quit | Status | Help | Report | Reveal | Block | Save
           | SetLang | Keep)

USER_COMMANDS: dict[str, type[Next | Stop | Quit | Status | Help | Reveal | Block]] = {
    "/reveal": Reveal,
    "/next": Next, "/n": Next, "/new": Next,
    "/stop": Stop,
    "/quit": Quit, "/exit": Quit, "/q": Quit,
    "/status": Status,
    "/block": Block,
    "/help": Help, "/h": Help, "/?": Help,
}
"""Slash commands a person can type, and their short forms."""

_SIMPLE: dict[str, type[Next | Stop | Quit | Status | Reveal | Block]] = {
    "next": Next, "stop": Stop, "quit": Quit, "status": Status, "reveal": Reveal, "block": Block}


def parse_command(line: str | bytes) -> Command:
    """One command from one line of JSON."""
    if len(line) > MAX_COMMAND_LINE:
        raise CommandError(f"command line too long ({len(line)} bytes, at most {MAX_COMMAND_LINE})")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CommandError(f"a command must be a JSON object, got {obj!r:.80}")
    cmd = obj.get("cmd")
    if isinstance(cmd, str) and cmd in _SIMPLE:
        return _SIMPLE[cmd]()
    if cmd == "send":
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CommandError(f"send needs a non-empty \"text\" string, got {text!r:.80}")
        return Send(text)
    if cmd == "report":
        reason = obj.get("reason", "")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise CommandError(f"report takes an optional \"reason\" string of at most"
                               f" {MAX_REASON} characters, got {reason!r:.80}")
        return Report(reason.strip())
    if cmd == "save":
        path = obj.get("path")
        if path is not None and (not isinstance(path, str) or len(path) > MAX_PATH or "\0" in path):
            raise CommandError(f"save takes an optional \"path\" string, got {path!r:.80}")
        return Save(path or None)
    if cmd == "keep":
        name = obj.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 64):
            raise CommandError(f"keep takes an optional \"name\" of at most 64 characters, got {name!r:.80}")
        return Keep(name.strip() or None if name else None)
    if cmd == "lang":
        lang = obj.get("lang")
        if not isinstance(lang, str) or len(lang) > 16:
            raise CommandError(f"lang needs a \"lang\" code like \"fr\" (\"\" for none), got {lang!r:.80}")
        return SetLang(lang)
    if cmd == "typing":
        active = obj.get("active")
        if not isinstance(active, bool):
            raise CommandError(f"typing needs \"active\": true or false, got {active!r:.80}")
        return SetTyping(active)
    raise CommandError(f"unknown command {cmd!r:.80}"
                       " (send, typing, next, stop, quit, status, report, reveal, block, save, lang, keep)")


def parse_user_line(text: str) -> Command:
    """One line typed by a person: a ``/command``, or a message to send.

    ``//text`` sends ``/text``. A blank line or an unknown ``/command`` raises
    :class:`CommandError` (its message is what the user sees).
    """
    stripped = text.strip()
    if not stripped:
        raise CommandError("cannot send an empty message")
    if stripped.startswith("//"):
        return Send(text.lstrip()[1:])
    if stripped.startswith("/"):
        word, _, rest = stripped.partition(" ")
        if word.lower() == "/report":
            if len(rest) > MAX_REASON:
                raise CommandError(f"a report's reason may be at most {MAX_REASON} characters")
            return Report(rest.strip())
        if word.lower() == "/save":
            path = text.strip()[len(word):].strip()
            if len(path) > MAX_PATH or "\0" in path:
                raise CommandError("that is not a file name")
            return Save(path or None)
        if word.lower() == "/lang":
            return SetLang(rest.strip())
        if word.lower() == "/keep":
            if len(rest.strip()) > 64:
                raise CommandError("a contact name may be at most 64 characters")
            return Keep(rest.strip() or None)
        command = USER_COMMANDS.get(stripped.lower())
        if command is None:
            raise CommandError(f"unknown command {stripped!r:.80}; /help lists them")
        return command()
    return Send(text)
