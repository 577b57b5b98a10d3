"""Language lanes (Omegle's language choice), pure: which language a user speaks.

A language is an ISO 639-1 code, two lower-case ASCII letters ("en", "fr").
A node with a language lists itself, and looks first, under topic keys of its
*lane* (``discovery/topics.py``: ``strangers/v1/lang/<code>/...``); after the
random fallback it also looks, and is found, under the keys without a
language, where everyone is. ``""`` means no language: the plain keys only.
"""

from __future__ import annotations

import re

from strangers.errors import ConfigError

_CODE = re.compile(r"^[a-z]{2}$")


def normalize_lang(text: object) -> str:
    """``text`` as an ISO 639-1 code ("FR", " fr " -> "fr"; "" stays ""); ConfigError if not one."""
    if not isinstance(text, str):
        raise ConfigError(f"a language is a two-letter ISO 639-1 code (like en, fr), got {text!r:.40}")
    code = text.strip().lower()
    if code and not _CODE.match(code):
        raise ConfigError(f"a language is a two-letter ISO 639-1 code (like en, fr), got {text!r:.40}")
    return code


def lang_of_locale(name: str | None) -> str:
    """The language of a locale name ("fr_FR.UTF-8" -> "fr"); "" for C, POSIX or nothing usable."""
    if not name:
        return ""
    code = name.split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()
    return code if _CODE.match(code) else ""


def is_lang(value: object) -> bool:
    """Whether ``value`` is a language code as sent on the wire ("" included: none)."""
    return isinstance(value, str) and (value == "" or bool(_CODE.match(value)))
