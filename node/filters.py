"""Local filters, with files: the user's word list and link/contact warnings on messages.

The detection is pure (:mod:`strangers.safety.filters`); this module reads the
word list (``--filter-words FILE``, else ``filter-words.txt`` in the data
directory when it exists) and marks each incoming message event: ``hidden``
when it matches the list, ``warnings`` for links and contact handles.  The text
itself is never dropped: interfaces show a hidden message when the user asks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from strangers.errors import ConfigError
from strangers.safety.filters import MAX_WORD, MAX_WORDS, WordFilter, contact_warnings, parse_word_list

from . import events
from .store import DataDir

DEFAULT_WORDS_FILE = "filter-words.txt"
MAX_WORDS_FILE = MAX_WORDS * (MAX_WORD + 1) * 4


def load_word_filter(path: Path | None = None, data: DataDir | None = None) -> WordFilter:
    """The word list of ``path`` (ConfigError if unreadable), else the data dir's default one."""
    explicit = path is not None
    if path is None:
        path = (data if data is not None else DataDir()).root / DEFAULT_WORDS_FILE
    try:
        with open(path, "rb") as file:
            content = file.read(MAX_WORDS_FILE + 1)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"--filter-words: no such file {str(path)!r}") from None
        return WordFilter()
    except OSError as exc:
        raise ConfigError(f"cannot read the word list {str(path)!r}: {exc.strerror}") from None
    return WordFilter(parse_word_list(content[:MAX_WORDS_FILE].decode("utf-8", "replace")))


def mark_message(event: events.MessageReceived, words: WordFilter) -> events.MessageReceived:
    """``event`` with ``hidden`` (the word list matches) and ``warnings`` (links, contacts)."""
    return dataclasses.replace(event, hidden=bool(words.matches(event.text)),
                               warnings=contact_warnings(event.text))
