"""Local filters on a stranger's messages (pure): a word list, and link/contact detection.

Nothing here drops or changes a message: the node marks it (``hidden``: it
matches the user's word list, shown behind a notice the user can lift;
``warnings``: it holds a link or a way to reach the sender elsewhere) and the
interface decides how to show it.  Moving a conversation to another app is a
classic first step of grooming, so a contact handle from a stranger is worth
a warning before it is read.

:func:`contact_warnings` finds, in this order of kinds (:data:`KINDS`):

``link``
    ``http(s)://`` and ``www.`` addresses, and bare domains such as
    ``t.me/name``, ``discord.gg/abc`` or ``example.com`` (a known top-level
    domain; those that are common English words, ``.me``, ``.so``, ``.to``...,
    count only with a path after them).
``email``
    ``name@example.com``, also written ``name at gmail dot com``,
    ``name [at] gmail [dot] com``, ``name(at)gmail.com``.
``phone``
    seven or more digits in a row, possibly with ``+``, spaces, dashes, dots
    or parentheses between them (``+44 7700 900123``, ``(555) 123-4567``,
    ``0 7 7 0 0 9 0 0 1 2 3``); not dates (``2024-05-01``), times, prices or
    numbers with thousands separators.
``handle``
    ``@name`` (not inside an e-mail address), ``name#1234`` (Discord), and a
    platform named beside a name: ``snap: name``, ``my insta is name``,
    ``add me on discord``, ``telegram @name``.

Word lists (:class:`WordFilter`) match whole words and phrases, case-,
accent- and width-insensitive (NFKC, case folding, marks removed), so "ass"
does not hide "class" and "Ass" or "Ａss" are still found.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = ["KINDS", "MAX_WORDS", "WordFilter", "contact_warnings", "normalise", "parse_word_list"]

KINDS: Final = ("link", "email", "phone", "handle")
MAX_WORDS: Final = 10000
"""Most entries a word list may hold (more are ignored)."""
MAX_WORD: Final = 100

_TLDS = (
    "com net org info biz io co gg tv xyz app dev site online live link ly fm ai uk de fr es it "
    "nl ru ua pl br ca au us in jp cn kr ch se no dk fi cz gr pt ro hu tr mx ar cl nz za ie at "
    "eu asia club shop store page blog news cc ws su vn id ph th my sg hk tw info top icu"
).split()
#: Top-level domains that are also common words or abbreviations: a link only with a path.
_WORDLIKE_TLDS = {"me", "so", "to", "is", "it", "at", "be", "am", "in", "no", "us", "my", "do",
                  "go", "co", "ai", "id", "tv", "la", "im", "ok", "hi", "fm", "ly", "sh", "ac"}
_STRONG_TLDS = sorted(set(_TLDS) - _WORDLIKE_TLDS, key=len, reverse=True)
_ALL_TLDS = sorted(set(_TLDS) | _WORDLIKE_TLDS, key=len, reverse=True)

_DOT = r"(?:\.|\s*[\[\(\{]\s*dot\s*[\]\)\}]\s*|\s+dot\s+)"
_AT = r"(?:@|\s*[\[\(\{]\s*at\s*[\]\)\}]\s*|\s+at\s+)"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

class _Patterns:
    """The detection patterns, compiled on first use (:func:`_patterns`): ~18 ms of a
    launch's CPU that ``ready`` never needs."""

    def __init__(self) -> None:
        self.url = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
        self.strong_domain = re.compile(
            rf"(?<![@\w.-])(?:{_LABEL}\.){{1,6}}(?:{'|'.join(_STRONG_TLDS)})\b(?![.-]?\w)(?:/\S*)?",
            re.IGNORECASE)
        self.domain_with_path = re.compile(
            rf"(?<![@\w.-])(?:{_LABEL}\.){{1,6}}(?:{'|'.join(_ALL_TLDS)})/[\w\-./?=&%#+~]+", re.IGNORECASE)
        self.email = re.compile(
            rf"(?<![a-z0-9._%+-])[a-z0-9._%+-]{{1,64}}{_AT}{_LABEL}(?:{_DOT}{_LABEL}){{0,5}}{_DOT}"
            rf"(?:{'|'.join(_ALL_TLDS)})\b",
            re.IGNORECASE)
        self.phone = re.compile(r"(?<![\w.,:/-])\+?\(?\d(?:[\s().-]{0,3}\d){6,16}(?!\w|[.,:/-]\d)")
        self.not_phone = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$"
                                    r"|^\d+\.\d+$")
        """Dates and decimal numbers, which look like phone numbers to the pattern."""
        self.at_handle = re.compile(r"(?<![\w.@])@[a-z0-9_](?:[a-z0-9_.]{0,28}[a-z0-9_])?\b", re.IGNORECASE)
        self.discord_tag = re.compile(r"\b[\w.]{2,32}#\d{4}\b")
        self.platform_name = re.compile(
            rf"\b(?:{_PLATFORMS})\b\s*(?:[:=]|-|is|id|name|user(?:name)?|handle|@|\bat\b)+\s*[@\w.]{{2,}}",
            re.IGNORECASE)
        self.move_me = re.compile(
            rf"\b(?:add|find|follow|hit|dm|message|msg|text|call|contact|talk to|chat with|"
            rf"reach|ping|friend)\s+me\s+(?:up\s+)?(?:on|at|in|via|over)\s+(?:{_PLATFORMS})\b"
            rf"|\bmy\s+(?:{_PLATFORMS})\b",
            re.IGNORECASE)


_PLATFORMS = (r"snap(?:chat)?|sc|insta(?:gram)?|ig|tik\s?tok|discord|telegram|tg|whats\s?app|"
              r"wa|kik|skype|signal|twitter|facebook|fb|wechat|viber|threads|bluesky|reddit|"
              r"steam|xbox|psn|roblox|twitch|teams|zoom|line|session")


@functools.cache
def _patterns() -> _Patterns:
    return _Patterns()


def contact_warnings(text: str) -> tuple[str, ...]:
    """The kinds of :data:`KINDS` found in ``text``, in that order (empty: none)."""
    p = _patterns()
    found: list[str] = []
    without_emails = p.email.sub(" ", text)
    if p.url.search(without_emails) or p.strong_domain.search(without_emails) or (
            p.domain_with_path.search(without_emails)):
        found.append("link")
    if p.email.search(text):
        found.append("email")
    if any(not p.not_phone.match(match.group().strip()) for match in p.phone.finditer(without_emails)):
        found.append("phone")
    if (p.at_handle.search(without_emails) or p.discord_tag.search(text)
            or p.platform_name.search(without_emails) or p.move_me.search(text)):
        found.append("handle")
    return tuple(found)


# --- word lists ---------------------------------------------------------------------------


def normalise(text: str) -> str:
    """``text`` for matching: NFKC, case-folded, marks removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    bare = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(bare.split())


def parse_word_list(content: str) -> tuple[str, ...]:
    """The entries of a word list file: one word or phrase a line; ``#`` starts a comment."""
    words: list[str] = []
    for line in content.splitlines():
        entry = normalise(line.split("#", 1)[0])
        if entry and len(entry) <= MAX_WORD and entry not in words:
            words.append(entry)
        if len(words) >= MAX_WORDS:
            break
    return tuple(words)


class WordFilter:
    """Whole-word (and whole-phrase) matching of a user's word list."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        entries = [normalise(word) for word in words]
        self.words: tuple[str, ...] = tuple(dict.fromkeys(word for word in entries if word))
        if self.words:
            alternatives = "|".join(re.escape(word) for word in
                                    sorted(self.words, key=len, reverse=True))
            self._pattern: re.Pattern[str] | None = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        else:
            self._pattern = None

    def matches(self, text: str) -> tuple[str, ...]:
        """The list's entries found in ``text`` (empty: the message may be shown)."""
        if self._pattern is None:
            return ()
        return tuple(dict.fromkeys(self._pattern.findall(normalise(text))))

    def __bool__(self) -> bool:
        return bool(self.words)
