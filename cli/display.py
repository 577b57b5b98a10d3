"""What the terminal UI shows, as pure functions: styled lines and the status bar.

No I/O and no threads here; ``interactive.py`` prints what these return.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth

from strangers.node import events

from .format import BIDI_CONTROLS, _human_list, format_event, format_warnings

HIDDEN_NOTICE = "[a message hidden by your word filter; /reveal shows it]"

KEYS = """Keys:
  Enter        send (your message is end-to-end encrypted)
  Esc Esc      leave this stranger and meet the next one (like /next)
  Ctrl-D       leave and exit (on an empty line; Ctrl-C too)
  Up / Down    your earlier messages"""
KEY_HINTS = "Esc Esc next · Ctrl-D quit · /help"

STYLE = Style.from_dict({
    "you": "ansiblue bold",
    "stranger": "ansired bold",
    "stranger2": "ansimagenta bold",
    "system": "dim",
    "greeting": "bold",
    "common": "ansigreen",
    "safety": "ansicyan",
    "left": "bold",
    "warning": "ansiyellow",
    "error": "ansired",
    "prompt": "bold",
    "bottom-toolbar": "noreverse bg:#262626 #d0d0d0",
    "toolbar.starting": "#d0d0d0",
    "toolbar.searching": "#87afff",
    "toolbar.chatting": "#87d787 bold",
    "toolbar.typing": "#ffd75f bold",
    "toolbar.left": "#ff8787 bold",
    "toolbar.details": "#d0d0d0",
    "toolbar.keys": "#808080",
})


# -- what to show -----------------------------------------------------------------


def clean_text(text: str) -> str:
    """``text`` made safe for a terminal: no control characters but newlines.

    A stranger must not be able to move our cursor, recolour the screen or
    reverse the text direction (escape sequences, backspaces, bidi overrides).
    """
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    return "".join(
        "\ufffd" if ch in BIDI_CONTROLS or (ch != "\n" and unicodedata.category(ch) == "Cc") else ch
        for ch in text
    )


def _cut(word: str, room: int) -> list[str]:
    """A word wider than ``room`` columns, in pieces that fit (a link, a long run of letters)."""
    pieces, piece, used = [], "", 0
    for char in word:
        width = max(get_cwidth(char), 0)
        if piece and used + width > room:
            pieces.append(piece)
            piece, used = "", 0
        piece += char
        used += width
    return [*pieces, piece] if piece else pieces


def _wrap_paragraph(paragraph: str, room: int) -> list[str]:
    """Greedy word wrap by display width; spaces between words on a line are kept as typed."""
    lines: list[str] = []
    line, used = "", 0
    for gap, word in re.findall(r"(\s*)(\S+)", paragraph):
        width = get_cwidth(word)
        if line and used + get_cwidth(gap) + width <= room:
            line, used = line + gap + word, used + get_cwidth(gap) + width
            continue
        if not line and gap and get_cwidth(gap) + width <= room and not lines:
            word, width = gap + word, get_cwidth(gap) + width  # leading indent kept
        if line:
            lines.append(line)
        if width > room:
            *whole, word = _cut(word, room)
            lines += whole
            width = get_cwidth(word)
        line, used = word, width
    return [*lines, line] if line or not lines else lines


def wrap(text: str, width: int, indent: int = 0) -> str:
    """``text`` broken into lines at word boundaries, fitting ``width`` terminal columns
    after ``indent`` (wide characters count two; a word longer than a line is cut)."""
    room = max(width - indent - 1, 20)
    lines = [line for paragraph in text.split("\n") for line in _wrap_paragraph(paragraph, room)]
    return ("\n" + " " * indent).join(lines)


def _said(style: str, label: str, text: str, width: int) -> FormattedText:
    return FormattedText([(f"class:{style}", label),
                          ("", " " + wrap(clean_text(text), width, indent=len(label) + 1))])


def styled_event(event: events.Event, width: int = 80) -> FormattedText | None:
    """The lines shown above the prompt for ``event``, styled and wrapped to ``width`` columns
    (None: nothing to show)."""
    if isinstance(event, events.MessageReceived):
        said = _said("stranger", "Stranger:", HIDDEN_NOTICE if event.hidden else event.text, width)
        if not event.warnings:
            return said
        warning = wrap(format_warnings(event.warnings), width)
        return FormattedText([("class:warning", warning + "\n"), *said])
    if isinstance(event, events.QuestionMessage):
        style = "stranger" if event.stranger == 1 else "stranger2"
        return _said(style, f"Stranger {event.stranger}:", event.text, width)
    if isinstance(event, events.Revealed):
        return _said("stranger", "Stranger (revealed):", event.text, width)
    if isinstance(event, events.Sent):
        return _said("you", "You:", event.text, width)
    text = format_event(event)
    if text is None:
        return None
    lines = [wrap(line, width) for line in clean_text(text).split("\n")]
    if isinstance(event, events.Matched):
        first, *middle, last = lines
        fragments = [("class:greeting", "\n" + first)]  # a blank line sets each chat apart
        fragments += [("class:common", "\n" + line) for line in middle]
        fragments.append(("class:safety", "\n" + last))
        return FormattedText(fragments)
    style = {
        events.StrangerLeft: "class:left",
        events.Warning: "class:warning",
        events.Error: "class:error",
    }.get(type(event), "class:system")
    return FormattedText([(style, "\n".join(lines))])


def system_line(text: str, width: int | None = None) -> FormattedText:
    """A notice of ours, wrapped at word boundaries when ``width`` is given (indents kept)."""
    if width is not None:
        text = "\n".join(_wrap_keeping_indent(line, width) for line in text.split("\n"))
    return FormattedText([("class:system", text)])


def _wrap_keeping_indent(line: str, width: int) -> str:
    indent = len(line) - len(line.lstrip(" "))
    return " " * indent + wrap(line.lstrip(" "), width, indent=indent)


class Phase(enum.Enum):
    """Where the chat stands, as the status bar tells it."""

    STARTING = "starting"
    """The node is starting and joining the network."""
    SEARCHING = "searching"
    """Looking for a stranger."""
    CHATTING = "chatting"
    """In a chat."""
    LEAVING = "leaving"
    """Quitting: saying bye, stopping the node."""
    WATCHING = "watching"
    """Question mode: watching two strangers (we cannot type)."""


@dataclass(frozen=True)
class StatusLine:
    """What the bottom toolbar shows (an immutable snapshot, safe to hand between threads)."""

    phase: Phase
    headline: str
    details: tuple[str, ...] = ()
    """Shown after the headline, the first ones left out when the line is too narrow."""
    style: str = "starting"

    @property
    def chatting(self) -> bool:
        return self.phase is Phase.CHATTING


class ChatStatus:
    """Follows the node's events and words the status bar (pure)."""

    def __init__(self, interests: tuple[str, ...], question: str = "") -> None:
        self.interests = interests
        self.question = question
        """Question mode: what we asked (we watch, we never chat)."""
        self.here: set[int] = set()
        """Question mode: the strangers (1, 2) in the question now."""
        self.typing_stranger: int | None = None
        self.watched = False
        """Our chat is watched (someone asked a question)."""
        self.phase = Phase.STARTING
        self.random = False
        self.common: tuple[str, ...] = ()
        self.safety_code = ""
        self.path = "direct"
        self.stranger_typing = False
        self.lang = ""
        """Our language lane, as the last search said."""
        self.stranger_lang = ""
        self.ended: str | None = None
        """How the last chat ended, while looking for the next one."""

    def apply(self, event: events.Event) -> bool:
        """Take ``event`` into account; True when the status line changed."""
        before = self.line()
        match event:
            case events.Searching(_interests, random, lang):
                self.phase = Phase.SEARCHING
                self.random = random
                self.lang = lang
                self.stranger_typing = False
                if random:
                    self.ended = None
            case events.Matched(_peer, common, safety_code, _initiator, path, lang, _c, question):
                self.phase = Phase.CHATTING
                self.stranger_lang = lang
                self.watched = bool(question)
                self.common = common
                self.safety_code = safety_code
                self.path = path
            case events.PathChanged(path):
                self.path = path
                self.stranger_typing = False
                self.ended = None
            case events.Typing(active) if self.phase is Phase.CHATTING:
                self.stranger_typing = active
            case events.MessageReceived():
                self.stranger_typing = False
            case events.StrangerLeft(_reason, by_us) if self.phase is not Phase.LEAVING:
                self.phase = Phase.SEARCHING
                self.random = False
                self.stranger_typing = False
                self.ended = "You have disconnected." if by_us else "Stranger has disconnected."
            case events.QuestionJoined(stranger) if self.phase is not Phase.LEAVING:
                self.phase = Phase.WATCHING
                self.here.add(stranger)
                self.ended = None
            case events.QuestionTyping(stranger, active):
                self.typing_stranger = stranger if active else None
            case events.QuestionMessage():
                self.typing_stranger = None
            case events.QuestionLeft(stranger, _reason, by_us) if self.phase is not Phase.LEAVING:
                self.here.discard(stranger)
                self.typing_stranger = None
                if not by_us:
                    self.ended = f"Stranger {stranger} has disconnected."
                if not self.here:
                    self.phase = Phase.SEARCHING
            case events.Stopped():
                self.phase = Phase.LEAVING
        return self.line() != before

    def leaving(self) -> None:
        self.phase = Phase.LEAVING

    def line(self) -> StatusLine:
        match self.phase:
            case Phase.STARTING:
                return StatusLine(self.phase, "Connecting to the strangers network...")
            case Phase.LEAVING:
                return StatusLine(self.phase, "Saying goodbye...")
            case Phase.WATCHING:
                asked = (f"you asked: {self.question}",) if self.question else ()
                if self.typing_stranger is not None:
                    return StatusLine(self.phase, f"Stranger {self.typing_stranger} is typing...",
                                      asked, "typing")
                if len(self.here) == 2:
                    return StatusLine(self.phase, "Watching Stranger 1 and Stranger 2", asked,
                                      "chatting")
                if self.ended is not None:
                    return StatusLine(self.phase, f"{self.ended} /next asks two new strangers",
                                      asked, "left")
                return StatusLine(self.phase, "Stranger 1 is here; looking for a second stranger...",
                                  asked, "searching")
            case Phase.CHATTING:
                common = (f"you both like {_human_list(self.common)}",) if self.common else ()
                speaks = (f"speaks {self.stranger_lang}",) if self.stranger_lang else ()
                if self.watched:
                    speaks = ("someone is watching", *speaks)
                details = (*speaks, *common, f"safety code {self.safety_code}")
                if self.path == "relayed":
                    details = ("through a relay", *details)
                if self.stranger_typing:
                    return StatusLine(self.phase, "Stranger is typing...", details, "typing")
                return StatusLine(self.phase, "Chatting with a stranger", details, "chatting")
        lane = (f"language {self.lang}",) if self.lang else ()
        if self.question:
            return StatusLine(self.phase, "Looking for two strangers to discuss your question...",
                              (f"you asked: {self.question}",), style="searching")
        if self.ended is not None:
            return StatusLine(self.phase, f"{self.ended} Looking for the next one...", lane,
                              style="left")
        if self.random and self.interests:
            return StatusLine(self.phase, "Looking for a random stranger (nobody around shares your interests)...",
                              lane, style="searching")
        if self.interests:
            return StatusLine(self.phase, f"Looking for someone who likes {_human_list(self.interests)}...",
                              lane, style="searching")
        return StatusLine(self.phase, "Looking for a random stranger...", lane, style="searching")


def toolbar_fragments(status: StatusLine, width: int) -> FormattedText:
    """The bottom toolbar: the status, the details that fit, and the keys on the right if they fit."""
    details = status.details
    while details and 1 + get_cwidth(" · ".join((status.headline, *details))) > width:
        details = details[1:]
    text = " · ".join((status.headline, *details))
    fragments = [(f"class:toolbar.{status.style}", " " + status.headline),
                 ("class:toolbar.details", text[len(status.headline):])]
    hints = KEY_HINTS + " "
    gap = width - 1 - get_cwidth(text) - get_cwidth(hints)
    if gap >= 2:
        fragments += [("", " " * gap), ("class:toolbar.keys", hints)]
    return FormattedText(fragments)
