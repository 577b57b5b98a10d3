"""Local filters (safety/filters.py): real-world links and contact handles, and false positives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.safety.filters import WordFilter, contact_warnings, normalise, parse_word_list

FOUND = [
    # links
    ("check https://example.com/page", "link"),
    ("http://192.168.1.10:8080", "link"),
    ("go to www.coolsite.net now", "link"),
    ("join t.me/secretgroup", "link"),
    ("discord.gg/abc123", "link"),
    ("wa.me/447700900123", "link"),
    ("my site is example.com", "link"),
    ("bit.ly/3xYz", "link"),
    ("EXAMPLE.ORG", "link"),
    ("onlyfans.com/someone", "link"),
    ("see sub.domain.co.uk", "link"),
    ("youtube.com/watch?v=abc", "link"),
    # e-mail
    ("mail me: jane.doe+chat@gmail.com", "email"),
    ("jane at gmail dot com", "email"),
    ("jane [at] gmail [dot] com", "email"),
    ("jane(at)protonmail(dot)me", "email"),
    ("JANE@OUTLOOK.FR", "email"),
    # phone
    ("call me +44 7700 900123", "phone"),
    ("(555) 123-4567", "phone"),
    ("555-123-4567", "phone"),
    ("my number 07700900123", "phone"),
    ("0 7 7 0 0 9 0 0 1 2 3", "phone"),
    ("+1.555.123.4567", "phone"),
    ("+49 (0)30 1234567", "phone"),
    ("06 12 34 56 78", "phone"),
    # handles
    ("add me @cool_guy99", "handle"),
    ("snap: coolguy99", "handle"),
    ("sc - coolguy", "handle"),
    ("my insta is jane.doe", "handle"),
    ("add me on snapchat", "handle"),
    ("hit me up on telegram", "handle"),
    ("dm me on ig", "handle"),
    ("discord: someone#1234", "handle"),
    ("someone#1234", "handle"),
    ("telegram @someone", "handle"),
    ("my kik?", "handle"),
    ("whatsapp me", None),  # a platform alone, no name: no warning
]

NOT_FOUND = [
    "hello, how are you?",
    "i like cats.so what do you like",
    "e.g. this, i.e. that",
    "it costs 3.50 or 1,000,000 dollars",
    "the year 2024 was long",
    "meet at 10:30 tomorrow",
    "born 2001-05-17",
    "on 12/05/2023 it rained",
    "version 1.2.3.4 is out",
    "file.txt and notes.pdf",
    "i am 16",
    "call me maybe",
    "i hate tiktok",
    "we went to the discord of the band? no",
    "the score was 21-17",
    "email is old tech",
    "look at this",
    "me.too",
    "ok.bye",
    "5 + 5 = 10",
    "pi is 3.14159265",
    "my cat's name is tom",
    "12345",
    "😀😀😀",
    "",
]


@pytest.mark.parametrize("text, kind", FOUND)
def test_real_world_contacts_are_found(text: str, kind: str | None) -> None:
    found = contact_warnings(text)
    if kind is None:
        assert found == ()
    else:
        assert kind in found, (text, found)


@pytest.mark.parametrize("text", NOT_FOUND)
def test_ordinary_chat_gets_no_warning(text: str) -> None:
    assert contact_warnings(text) == (), text


def test_an_email_is_not_also_a_handle_or_link_and_kinds_come_in_order() -> None:
    assert contact_warnings("jane@example.com") == ("email",)
    assert contact_warnings("jane@example.com or 555 123 4567, www.x.com, @jane") == (
        "link", "email", "phone", "handle")


@given(st.text(max_size=300))
def test_any_text_gives_known_kinds_fast(text: str) -> None:
    assert set(contact_warnings(text)) <= {"link", "email", "phone", "handle"}


def test_a_long_hostile_text_is_checked_quickly() -> None:
    import time

    for text in ["1 " * 8000, "a." * 8000, "@" * 16000, "a at " * 3000, "x" * 16384]:
        start = time.perf_counter()
        contact_warnings(text)
        assert time.perf_counter() - start < 1.0, text[:20]


def test_word_lists_match_whole_words_whatever_the_case_accents_or_width() -> None:
    words = WordFilter(["ass", "Send Nudes", "crétin"])
    assert words.matches("you ASS") == ("ass",)
    assert words.matches("Ａss!") == ("ass",)  # full-width
    assert words.matches("my class and assignment") == ()
    assert words.matches("please   send\nnudes") == ("send nudes",)
    assert words.matches("quel cretin") == ("cretin",)
    assert words.matches("CRÉTIN et ass") == ("cretin", "ass")
    assert not WordFilter([]) and WordFilter([]).matches("anything") == ()
    assert normalise("  Ça   VA ") == "ca va"


def test_word_list_files_skip_comments_blanks_and_duplicates() -> None:
    assert parse_word_list("# my list\nass\n\n  Ass  # again\nsend nudes\n" + "x" * 101) == (
        "ass", "send nudes")
