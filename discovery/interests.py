"""Interest normalisation: the same word typed by two people must give the same topic.

``normalize_interest`` is pure and total: it either returns the canonical form
or raises :class:`~strangers.errors.ConfigError` whose message names the bad
value, so the CLI can print it as is.

Canonical form: Unicode NFKC, then ``casefold()``, then NFKC again (casefolding
can undo a composition: ``"ß\u0301"`` folds to ``"ss\u0301"``, whose NFKC is
``"sś"``; without the second pass the canonical form would not be a fixed
point, and a peer re-normalising it would reject it), then surrounding whitespace
trimmed and every inner run of whitespace collapsed to one ASCII space
(``"  Cinéma\u00a0 CLUB "`` -> ``"cinéma club"``). Interests may not be empty,
may not exceed :data:`MAX_INTEREST_CHARS` characters, and may not contain
control, format or unassigned characters (they could hide text in a terminal
or make two interests that look alike hash differently).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from strangers.errors import ConfigError

MAX_INTEREST_CHARS = 64
"""Longest interest, in characters after normalisation."""

MAX_INTERESTS = 16
"""Most interests one node may advertise (each costs DHT traffic)."""

_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def normalize_interest(raw: str) -> str:
    """Return the canonical form of one interest, or raise ConfigError."""
    if not isinstance(raw, str):
        raise ConfigError(f"interest must be text, got {raw!r}")
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    words = text.split()
    # str.split() treats every Unicode whitespace as a separator; control
    # characters such as \x00 are not whitespace, so they survive to the check.
    canonical = " ".join(words)
    for char in canonical:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ConfigError(
                f"interest {raw!r} contains a control or invisible character "
                f"(U+{ord(char):04X})"
            )
    if not canonical:
        raise ConfigError(f"interest {raw!r} is empty")
    if len(canonical) > MAX_INTEREST_CHARS:
        raise ConfigError(
            f"interest {raw!r} is too long ({len(canonical)} characters, "
            f"at most {MAX_INTEREST_CHARS})"
        )
    return canonical


def normalize_interests(raw: Iterable[str]) -> tuple[str, ...]:
    """Normalise a list of interests, dropping duplicates but keeping order."""
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(normalize_interest(item), None)
    if len(seen) > MAX_INTERESTS:
        raise ConfigError(
            f"too many interests ({len(seen)}, at most {MAX_INTERESTS})"
        )
    return tuple(seen)


def common_interests(ours: Iterable[str], theirs: Iterable[str]) -> tuple[str, ...]:
    """Interests both sides share, in our order (inputs are already canonical)."""
    their_set = set(theirs)
    return tuple(item for item in ours if item in their_set)
