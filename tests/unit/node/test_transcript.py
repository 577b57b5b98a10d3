"""The saved log (node/transcript.py): what it holds, how it reads, where it goes."""

from __future__ import annotations

import os
import stat

import pytest

from strangers.errors import ConfigError, LocalProtocolError
from strangers.node import events
from strangers.node.transcript import MAX_LINES, Transcript, render, write_log

PEER = "12D3KooWGzh8T3LSnzJyBQ6Ch5bCzVrBeHXVuN2uLFzvDJ4y8rX3"
T0 = 1_700_000_000.0


def chat(*extra: events.Event) -> Transcript:
    log = Transcript()
    log.record(events.Matched(PEER, ("jazz", "cinema"), "11111 22222 33333", True, "relayed", "fr"),
               T0)
    for offset, event in enumerate(extra, 1):
        log.record(event, T0 + offset)
    return log


def test_the_log_holds_interests_safety_code_and_who_said_what_when() -> None:
    log = chat(events.Sent(1, "hi"), events.MessageReceived(1, "hello\nhow are you?"),
               events.Delivered(1), events.Typing(True), events.StrangerLeft("quit"))
    text = render(log.chat)
    assert "You both like jazz, cinema." in text
    assert "Safety code: 11111 22222 33333 (through a relay)" in text
    assert "Stranger's language: fr" in text
    assert PEER in text
    body = text.split("\n\n", 1)[1].splitlines()
    assert body[0].endswith("] You: hi")
    assert body[1].endswith("] Stranger: hello")
    assert body[2].strip() == "how are you?" and body[2].startswith(" " * len("[00:00:00] Stranger: "))
    assert body[3].endswith("] Stranger left.")
    assert len(body) == 4  # delivery receipts and typing are not part of a conversation


def test_after_the_chat_nothing_more_is_added_and_a_new_chat_starts_a_new_log() -> None:
    log = chat(events.StrangerLeft("next", by_us=True), events.Sent(2, "late"))
    assert [line[2] for line in log.chat.lines] == ["You left to meet someone else."]
    log.record(events.Matched(PEER, (), "0", False), T0 + 10)
    assert log.chat.lines == type(log.chat.lines)() and "random stranger" in render(log.chat)


def test_a_chat_going_on_says_so_and_control_characters_are_shown_not_kept() -> None:
    text = render(chat(events.MessageReceived(1, "\x1b[2Jgotcha\r")).chat)
    assert "\x1b" not in text and "\r" not in text and "\\x1b[2Jgotcha\\r" in text
    assert "(the chat was still going on when saved)" in text


def test_a_long_chat_keeps_its_last_lines_and_says_how_many_went() -> None:
    log = chat(*[events.Sent(i, f"line {i}") for i in range(MAX_LINES + 3)])
    assert len(log.chat.lines) == MAX_LINES and log.chat.dropped == 3
    assert "[3 earlier lines were not kept]" in render(log.chat)


def test_nothing_to_save_before_the_first_chat() -> None:
    with pytest.raises(LocalProtocolError, match="no chat to save"):
        write_log(None)


def test_the_default_file_is_new_private_and_in_the_save_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STRANGERS_SAVE_DIR", str(tmp_path / "Documents"))
    log = chat(events.Sent(1, "hi"))
    first, second = write_log(log.chat), write_log(log.chat)
    assert first != second and first.parent == second.parent == (tmp_path / "Documents").resolve()
    assert first.name.startswith("strangers-chat-") and first.suffix == ".txt"
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600
    assert "You: hi" in first.read_text(encoding="utf-8")


def test_a_named_file_is_written_there_and_a_bad_one_is_a_clear_error(tmp_path) -> None:
    log = chat(events.Sent(1, "hi"))
    assert write_log(log.chat, str(tmp_path / "log.txt")) == (tmp_path / "log.txt").resolve()
    with pytest.raises(ConfigError, match="could not save the chat log"):
        write_log(log.chat, str(tmp_path / "missing" / "dir" / "log.txt"))


def test_a_watched_question_is_logged_with_both_strangers_labelled() -> None:
    log = Transcript("Cats or dogs?")
    log.record(events.QuestionJoined(1, PEER, ("pets",), "1 2 3"), T0)
    log.record(events.QuestionJoined(2, PEER, (), "4 5 6"), T0 + 1)
    log.record(events.QuestionMessage(2, "dogs"), T0 + 2)
    log.record(events.QuestionMessage(1, "cats!"), T0 + 3)
    log.record(events.QuestionLeft(1, "next"), T0 + 4)
    text = render(log.chat)
    assert "Question: Cats or dogs?" in text and "question mode" in text
    body = [line.split("] ", 1)[1] for line in text.split("\n\n", 1)[1].splitlines()]
    assert body == ["Stranger 1 joined.", "Stranger 2 joined.", "Stranger 2: dogs",
                    "Stranger 1: cats!", "Stranger 1 left."]


def test_a_stranger_who_was_watched_sees_the_question_in_its_log() -> None:
    log = Transcript()
    log.record(events.Matched(PEER, (), "0", False, "direct", "", "", "Cats or dogs?"), T0)
    assert "Question: Cats or dogs? (someone asked it and watched)" in render(log.chat)
