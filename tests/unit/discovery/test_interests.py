"""Interest normalisation: the same word typed by two people must give the same topic."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from strangers.discovery.interests import (
    MAX_INTEREST_CHARS,
    MAX_INTERESTS,
    common_interests,
    normalize_interest,
    normalize_interests,
)
from strangers.errors import ConfigError, StrangersError

# --- normalize_interest: the canonical form --------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("jazz", "jazz"),
        ("JAZZ", "jazz"),
        ("  Cinéma\u00a0 CLUB ", "cinéma club"),  # the docstring's example
        ("Straße", "strasse"),  # casefold, not lower
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),  # casefold maps final sigma too
        ("ﬁlm", "film"),  # NFKC: ligature
        ("ｊａｚｚ", "jazz"),  # NFKC: fullwidth
        ("Cine\u0301ma", "cinéma"),  # NFKC: composed
        ("①", "1"),  # NFKC: compatibility digit
        ("rock\t\n\r  and\u3000\u2003roll", "rock and roll"),  # every whitespace collapses
        ("\u2028jazz\u2029", "jazz"),  # line/paragraph separators trimmed
        ("a\u00a0\u00a0\u00a0b", "a b"),
        ("ß\u0301", "sś"),  # casefold undoes a composition: NFKC is applied again
        ("🎸", "🎸"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert normalize_interest(raw) == canonical


def test_two_spellings_of_one_interest_meet() -> None:
    spellings = ["Cinéma", "CINÉMA", "cine\u0301ma", " cinéma ", "ｃｉｎéｍａ"]
    assert {normalize_interest(s) for s in spellings} == {"cinéma"}


@pytest.mark.parametrize("raw", ["", " ", "\t\n", "\u00a0\u3000", "\u2028"])
def test_empty_interest_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="is empty") as info:
        normalize_interest(raw)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    "char",
    [
        "\x00",  # NUL (Cc)
        "\x1b",  # ESC (Cc): terminal escape sequences
        "\x7f",  # DEL (Cc)
        "\u200b",  # zero width space (Cf): two interests that look alike
        "\u200d",  # zero width joiner (Cf)
        "\u202e",  # right-to-left override (Cf): hides text
        "\u2066",  # left-to-right isolate (Cf)
        "\ufeff",  # byte order mark (Cf)
        "\ue000",  # private use (Co)
        "\ud800",  # lone surrogate (Cs)
        "\U000e0001",  # language tag (Cf)
        "\u0378",  # unassigned (Cn)
    ],
)
def test_control_format_private_and_unassigned_characters_are_refused(char: str) -> None:
    raw = f"ja{char}zz"
    with pytest.raises(ConfigError, match="control or invisible") as info:
        normalize_interest(raw)
    message = str(info.value)
    assert repr(raw) in message  # the bad value is echoed, escaped
    assert f"U+{ord(char):04X}" in message


def test_a_lone_invisible_character_is_refused_not_empty() -> None:
    with pytest.raises(ConfigError, match="U\\+200B"):
        normalize_interest("\u200b")


def test_longest_interest_is_accepted_and_one_more_is_refused() -> None:
    assert normalize_interest("x" * MAX_INTEREST_CHARS) == "x" * MAX_INTEREST_CHARS
    raw = "x" * (MAX_INTEREST_CHARS + 1)
    with pytest.raises(ConfigError, match="too long") as info:
        normalize_interest(raw)
    assert repr(raw) in str(info.value)
    assert f"{MAX_INTEREST_CHARS + 1} characters" in str(info.value)


def test_length_is_counted_after_normalisation() -> None:
    # surrounding blanks do not count, characters (not bytes) do
    assert normalize_interest("  " + "é" * MAX_INTEREST_CHARS + "  ") == "é" * MAX_INTEREST_CHARS
    # "ß" becomes "ss": 33 of them is 66 characters
    with pytest.raises(ConfigError, match="66 characters"):
        normalize_interest("ß" * 33)


@pytest.mark.parametrize("raw", [None, b"jazz", 42, ["jazz"]])
def test_non_text_is_refused(raw: object) -> None:
    with pytest.raises(ConfigError, match="must be text") as info:
        normalize_interest(raw)  # type: ignore[arg-type]
    assert repr(raw) in str(info.value)


def test_config_error_is_a_strangers_error() -> None:
    with pytest.raises(StrangersError):
        normalize_interest("")


@given(st.text())
@example("ß\u0301")
@example("\u00b4")  # NFKC turns it into " \u0301"
@example("ǰ")  # casefold gives "j\u030c"
@example("\u1fb3\u0301")
def test_normalize_is_idempotent_on_its_output(raw: str) -> None:
    try:
        canonical = normalize_interest(raw)
    except ConfigError:
        return
    assert normalize_interest(canonical) == canonical


@given(st.text(min_size=1))
def test_canonical_form_has_no_case_no_stray_space_and_is_nfkc(raw: str) -> None:
    try:
        canonical = normalize_interest(raw)
    except ConfigError:
        return
    assert canonical == canonical.strip()
    assert "  " not in canonical
    assert all(not char.isspace() or char == " " for char in canonical)
    assert unicodedata.normalize("NFKC", canonical) == canonical
    assert 1 <= len(canonical) <= MAX_INTEREST_CHARS


# --- normalize_interests: a list ---------------------------------------------------


def test_list_is_normalised_deduplicated_and_keeps_order() -> None:
    assert normalize_interests(["Jazz", "cinema", " JAZZ ", "Cinéma", "cinema"]) == (
        "jazz",
        "cinema",
        "cinéma",
    )


def test_empty_list_is_fine() -> None:
    assert normalize_interests([]) == ()


def test_any_iterable_is_accepted() -> None:
    assert normalize_interests(iter(["B", "a"])) == ("b", "a")


def test_one_bad_interest_refuses_the_list_and_names_it() -> None:
    with pytest.raises(ConfigError, match=r"'bad\\x1b'"):
        normalize_interests(["jazz", "bad\x1b"])


def test_at_most_max_interests() -> None:
    many = [f"topic {n}" for n in range(MAX_INTERESTS)]
    assert len(normalize_interests(many)) == MAX_INTERESTS
    with pytest.raises(ConfigError, match=f"too many interests \\({MAX_INTERESTS + 1}, at most"):
        normalize_interests([*many, "one more"])


def test_duplicates_do_not_count_towards_the_limit() -> None:
    many = [f"topic {n}" for n in range(MAX_INTERESTS)]
    assert normalize_interests(many + [m.upper() for m in many]) == tuple(many)


# --- common_interests ----------------------------------------------------------------


def test_common_interests_keep_our_order() -> None:
    assert common_interests(("jazz", "cinema", "chess"), ("chess", "jazz")) == ("jazz", "chess")
    assert common_interests(("chess", "jazz"), ("jazz", "cinema", "chess")) == ("chess", "jazz")


def test_nothing_in_common() -> None:
    assert common_interests(("jazz",), ("chess",)) == ()
    assert common_interests((), ("chess",)) == ()
    assert common_interests(("jazz",), ()) == ()


def test_common_interests_accept_any_iterable() -> None:
    assert common_interests(iter(["a", "b"]), iter(["b"])) == ("b",)
