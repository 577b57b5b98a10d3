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
