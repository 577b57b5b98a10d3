"""Omegle's "save the log": the conversation as a readable text file, only when asked.

A :class:`Transcript` follows the node's events (:meth:`Transcript.record`,
with the wall-clock time passed in) and keeps the current chat, or the last
one once it ended: when it started, the common interests, the safety code,
who said what and when, and how it ended.  :func:`render` turns it into
plain text; :func:`write_log` writes that to a file (0600, never over an
existing file unless it is the path the user named).  Nothing is written
unless the user asks (``/save``, ``{"cmd": "save"}``).

Bounds: a chat's lines are capped at :data:`MAX_LINES` (the oldest are
dropped, and the log says so), so a long chat cannot grow memory for ever.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from strangers.errors import ConfigError, LocalProtocolError

from . import events

MAX_LINES = 5000
"""Lines of one chat kept for the log (the oldest are dropped beyond it)."""

ENV_SAVE_DIR = "STRANGERS_SAVE_DIR"
"""Where ``/save`` without a path writes (default: the user's documents directory)."""

_REASONS = {"quit": "left", "next": "left to meet someone else", "disconnected": "disconnected",
            "timeout": "stopped answering", "error": "disconnected (an error)"}


@dataclass
class ChatLog:
    """One chat, as the log tells it."""

    started: float
    peer_id: str
    common: tuple[str, ...]
    safety_code: str
    path: str
    lang: str = ""
    question: str = ""
    """Question mode: the question (asked by us, or by whoever watched us)."""
    watching: bool = False
    """We asked, and watched two strangers."""
    lines: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    """(time, who, text): who is "You", "Stranger" or "" (a notice)."""
    dropped: int = 0
    ended: float | None = None

    def add(self, when: float, who: str, text: str) -> None:
        if len(self.lines) == MAX_LINES:
            self.dropped += 1
        self.lines.append((when, who, text))


class Transcript:
    """The current (or last) chat, built from events."""

    def __init__(self, question: str = "") -> None:
        self.chat: ChatLog | None = None
        self.question = question
        """What we ask, in question mode (``strangers ask``)."""

    def record(self, event: events.Event, now: float) -> None:
        """Take ``event`` (at Unix time ``now``) into the log."""
        chat = self.chat
        match event:
            case events.Matched(peer_id, common, safety_code, _initiator, path, lang, _c, question):
                self.chat = ChatLog(now, peer_id, common, safety_code, path, lang, question)
            case events.QuestionJoined(1, peer_id, common, safety_code, lang):
                self.chat = ChatLog(now, peer_id, common, safety_code, "direct", lang,
                                    self.question, watching=True)
                self.chat.add(now, "", "Stranger 1 joined.")
            case events.QuestionJoined(number) if chat is not None and chat.watching:
                chat.add(now, "", f"Stranger {number} joined.")
            case events.QuestionMessage(number, text) if chat is not None and chat.watching:
                chat.add(now, f"Stranger {number}", text)
            case events.QuestionLeft(number, _reason, by_us) if chat is not None and chat.watching:
                chat.add(now, "", f"Stranger {number} {'was closed' if by_us else 'left'}.")
                chat.ended = now
            case events.Sent(_id, text) if chat is not None and chat.ended is None:
                chat.add(now, "You", text)
            case events.MessageReceived(_id, text) if (chat is not None and chat.ended is None
                                                       and not chat.watching):
                chat.add(now, "Stranger", text)
            case events.StrangerLeft(reason, by_us) if chat is not None and chat.ended is None:
                chat.ended = now
                who = "You" if by_us else "Stranger"
                chat.add(now, "", f"{who} {_REASONS.get(reason, 'left')}.")


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _printable(text: str) -> str:
    """Control characters (but newlines and tabs) shown as escapes: a log opened in a
    terminal must not run a stranger's escape sequences."""
    return "".join(ch if ch in "\n\t" or ch.isprintable() else repr(ch)[1:-1] for ch in text)


def render(chat: ChatLog) -> str:
    """The log as plain text, one line per message (continuation lines indented)."""
    day = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(chat.started))
    head = [f"strangers chat log, {day}"]
    if chat.watching:
        head.append("You watched two strangers discuss your question (question mode).")
    head.append(f"{'Stranger 1' if chat.watching else 'Stranger'}: {chat.peer_id}")
    if chat.question:
        head.append(f"Question: {_printable(chat.question)}"
                    + ("" if chat.watching else " (someone asked it and watched)"))
    if chat.lang:
        head.append(f"Stranger's language: {chat.lang}")
    head.append("You both like " + ", ".join(chat.common) + "." if chat.common
                else "A random stranger (no common interests).")
    head.append(f"Safety code: {chat.safety_code}"
                + (" (through a relay)" if chat.path == "relayed" else ""))
    body = []
    if chat.dropped:
        body.append(f"[{chat.dropped} earlier lines were not kept]")
    for when, who, text in chat.lines:
        label = f"[{_clock(when)}] " + (f"{who}: " if who else "")
        body.append(label + _printable(text).replace("\n", "\n" + " " * len(label)))
    if chat.ended is None:
        body.append(f"[{_clock(time.time())}] (the chat was still going on when saved)")
    return "\n".join(head) + "\n\n" + "\n".join(body) + "\n"


def default_dir() -> Path:
    """``$STRANGERS_SAVE_DIR``, else the user's documents directory."""
    env = os.environ.get(ENV_SAVE_DIR)
    if env:
        return Path(env)
    return Path(platformdirs.user_documents_dir())


def write_log(chat: ChatLog | None, path: str | None = None) -> Path:
    """Write ``chat``'s log to ``path`` (or a fresh name in :func:`default_dir`); the path.

    Raises :class:`LocalProtocolError` when there is no chat to save,
    :class:`ConfigError` when the file cannot be written.
    """
    if chat is None:
        raise LocalProtocolError("there is no chat to save yet (save during or after a chat)")
    text = render(chat).encode("utf-8")
    try:
        if path:
            target = Path(path).expanduser()
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        else:
            folder = default_dir()
            folder.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%d-%H%M%S", time.localtime(chat.started))
            target = folder / f"strangers-chat-{stamp}.txt"
            for count in range(2, 1000):
                if not target.exists():
                    break
                target = folder / f"strangers-chat-{stamp}-{count}.txt"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(text)
    except OSError as exc:
        raise ConfigError(f"could not save the chat log: {exc}") from None
    return target.resolve()
