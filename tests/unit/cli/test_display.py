"""The terminal UI's pure display half: styled lines and the status bar."""

from __future__ import annotations

from prompt_toolkit.formatted_text import fragment_list_to_text

from strangers.cli.display import ChatStatus, Phase, clean_text, styled_event, toolbar_fragments, wrap
from strangers.node import events


def test_a_stranger_cannot_drive_the_terminal():
    assert clean_text("hi\x1b[2Jthere\u202eevil\r\nok") == "hi\ufffd[2Jthere\ufffdevil\nok"


def test_long_messages_wrap_under_their_label():
    text = fragment_list_to_text(styled_event(events.MessageReceived(1, "word " * 30), width=40))
    lines = text.split("\n")
    assert lines[0].startswith("Stranger: word")
    assert all(len(line) <= 40 for line in lines)
    assert all(line.startswith(" " * 10) for line in lines[1:])
    assert wrap("", 40) == ""


def test_the_status_follows_a_chat():
    status = ChatStatus(("cinema", "jazz"))
    assert status.line().phase is Phase.STARTING
    assert status.apply(events.Searching(("cinema", "jazz"), False))
    assert "likes cinema and jazz" in status.line().headline
    status.apply(events.Matched("12D3KooWx", ("jazz",), "12345 67890 12345", True))
    line = status.line()
    assert line.chatting and "you both like jazz" in line.details
    assert status.apply(events.Typing(True))
    assert status.line().headline == "Stranger is typing..."
    status.apply(events.MessageReceived(1, "hi"))
    assert status.line().headline == "Chatting with a stranger"
    status.apply(events.StrangerLeft("next", False))
    assert status.line().headline.startswith("Stranger has disconnected.")
    status.apply(events.Searching(("cinema", "jazz"), True))
    assert "random stranger" in status.line().headline
    assert not status.apply(events.Delivered(1))


def test_the_toolbar_drops_details_before_the_headline():
    status = ChatStatus(("cinema",))
    status.apply(events.Matched("12D3KooWx", ("cinema",), "12345 67890 12345", False))
    wide = fragment_list_to_text(toolbar_fragments(status.line(), 120))
    narrow = fragment_list_to_text(toolbar_fragments(status.line(), 50))
    assert "you both like cinema" in wide and "Esc Esc" in wide
    assert "Chatting with a stranger" in narrow and "you both like" not in narrow


def test_the_status_bar_says_when_the_chat_goes_through_a_relay() -> None:
    status = ChatStatus(())
    status.apply(events.Matched("12D3KooWx", (), "12345", True, "relayed"))
    assert "through a relay" in status.line().details
    assert status.apply(events.PathChanged("direct"))
    assert "through a relay" not in status.line().details


def test_the_terminal_shows_a_line_when_the_path_changes() -> None:
    shown = fragment_list_to_text(styled_event(events.PathChanged("direct")))
    assert shown == "Now connected directly to the stranger."
    matched = fragment_list_to_text(styled_event(events.Matched("12D3KooWx", (), "123", True, "relayed")))
    assert "Through a relay" in matched and matched.rstrip().splitlines()[-1].startswith("Safety code")


def test_words_are_never_cut_at_the_edge_and_wide_characters_count_twice():
    from prompt_toolkit.utils import get_cwidth

    text = "the quick brown fox jumps over the lazy dog and keeps running far away"
    for width in (30, 41, 57):
        lines = wrap(text, width).split("\n")
        assert " ".join(lines) == text  # every break is at a space: no word is split
        assert all(get_cwidth(line) < width for line in lines)
    wide = "日本語のテキスト " * 8  # two columns per character
    lines = wrap(wide, 30).split("\n")
    assert all(get_cwidth(line) <= 29 for line in lines) and len(lines) > 2
    assert "".join(lines).replace(" ", "") == wide.replace(" ", "")
    link = "https://example.org/" + "a" * 70
    pieces = wrap(f"see {link} now", 40).split("\n")
    assert pieces[0] == "see" and "".join(pieces[1:-1]) + pieces[-1].split()[0] == link
    assert all(get_cwidth(piece) <= 39 for piece in pieces)


def test_help_and_notices_wrap_too_keeping_their_indent():
    from strangers.cli.display import system_line
    from strangers.cli.format import HELP

    text = fragment_list_to_text(system_line(HELP, 36))
    for line in text.split("\n"):
        assert len(line) < 36, line
    assert "/save [FILE]" in text and "(Omegle's \"save\n" not in text
    assert fragment_list_to_text(system_line("a " * 5)) == "a " * 5  # no width: as it is


def test_the_status_bar_tells_the_language_lane_and_the_strangers_language():
    status = ChatStatus(("jazz",))
    status.apply(events.Searching(("jazz",), False, "fr"))
    assert status.line().details == ("language fr",)
    status.apply(events.Matched("12D3KooWx", ("jazz",), "1 2 3", True, "direct", "fr"))
    assert "speaks fr" in status.line().details


def test_the_watcher_sees_two_labelled_strangers_and_a_status_of_its_own():
    status = ChatStatus(("pets",), "Cats or dogs?")
    status.apply(events.Searching(("pets",), False))
    assert "two strangers" in status.line().headline
    status.apply(events.QuestionJoined(1, "p1", (), "1"))
    assert status.line().phase is Phase.WATCHING and not status.line().chatting  # cannot type
    assert "looking for a second" in status.line().headline
    status.apply(events.QuestionJoined(2, "p2", (), "2"))
    assert status.line().headline == "Watching Stranger 1 and Stranger 2"
    status.apply(events.QuestionTyping(2, True))
    assert status.line().headline == "Stranger 2 is typing..."
    status.apply(events.QuestionLeft(1, "quit"))
    assert "Stranger 1 has disconnected" in status.line().headline
    text = fragment_list_to_text(styled_event(events.QuestionMessage(2, "dogs " * 20), width=40))
    assert text.startswith("Stranger 2: dogs") and all(len(line) <= 40 for line in text.split("\n"))


def test_a_watched_stranger_is_shown_the_question_and_told_someone_watches():
    text = fragment_list_to_text(styled_event(
        events.Matched("p", (), "1 2 3", False, "direct", "", "", "Cats or dogs?"), width=80))
    assert "Question to discuss: Cats or dogs?" in text and "watching" in text
    status = ChatStatus(())
    status.apply(events.Matched("p", (), "1 2 3", False, "direct", "", "", "Cats or dogs?"))
    assert "someone is watching" in status.line().details


def test_spaces_between_words_stay_as_typed():
    assert wrap("  /next   leave this stranger", 80) == "  /next   leave this stranger"
    assert wrap("a  b", 80) == "a  b"
