"""Lines a person types: parse_user_line (pure) and apply (one path for every interface)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.cli.actions import HelpReply, StatusReply, apply
from strangers.cli.commands import (
    USER_COMMANDS,
    CommandError,
    Help,
    Next,
    Quit,
    Send,
    SetTyping,
    Status,
    parse_command,
    parse_user_line,
)
from strangers.cli.format import HELP
from strangers.errors import LocalProtocolError
from strangers.node import NodeStatistics, events


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello", Send("hello")),
        ("  spaced  out ", Send("  spaced  out ")),  # a message is sent as typed
        ("/next", Next()), ("/n", Next()), ("/new", Next()), ("  /next  ", Next()),
        ("/quit", Quit()), ("/exit", Quit()), ("/q", Quit()), ("/QUIT", Quit()),
        ("/help", Help()), ("/h", Help()), ("/?", Help()),
        ("/status", Status()),
        ("//next is a command", Send("/next is a command")),
        ("  //x", Send("/x")),
        ("a /next inside", Send("a /next inside")),
        ("café 🎸", Send("café 🎸")),
    ],
)
def test_every_user_line(line: str, command: object) -> None:
    assert parse_user_line(line) == command


@pytest.mark.parametrize("line", ["", "   ", "\t"])
def test_a_blank_line_is_an_error(line: str) -> None:
    with pytest.raises(CommandError, match="empty"):
        parse_user_line(line)


@pytest.mark.parametrize("line", ["/nxt", "/", "/next now", "/" + "x" * 500])
def test_an_unknown_slash_command_is_an_error_that_points_to_help(line: str) -> None:
    with pytest.raises(CommandError, match="unknown command") as error:
        parse_user_line(line)
    assert "/help" in str(error.value)
    assert len(str(error.value)) < 150  # a long line is not echoed whole


def test_help_names_one_form_of_every_command() -> None:
    for kind in set(USER_COMMANDS.values()):
        assert any(f"\n  {name} " in HELP for name, of in USER_COMMANDS.items() if of is kind), kind


@given(st.text(min_size=1).filter(lambda t: t.strip() and not t.strip().startswith("/")))
def test_anything_not_a_command_is_sent_unchanged(text: str) -> None:
    assert parse_user_line(text) == Send(text)


# -- apply: the same commands, whichever interface they came from -------------------------


class FakeNode:
    """Records what apply asks of it (the node's public methods only)."""

    peer_id = "12D3KooWfake"

    def __init__(self, send_error: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.emitted: list[events.Event] = []
        self.send_error = send_error

    async def send_text(self, text: str) -> int:
        self.calls.append(("send_text", text))
        if self.send_error is not None:
            raise self.send_error
        return 1

    async def set_typing(self, active: bool) -> None:
        self.calls.append(("set_typing", active))

    async def next(self) -> None:
        self.calls.append(("next",))

    async def quit(self) -> None:
        self.calls.append(("quit",))

    def statistics(self) -> NodeStatistics:
        return NodeStatistics("searching", 3, 2, 1, 9, 0)

    async def emit(self, event: events.Event) -> None:
        self.emitted.append(event)


@pytest.mark.parametrize(
    ("command", "call"),
    [(Send("hi"), ("send_text", "hi")), (SetTyping(True), ("set_typing", True)),
     (Next(), ("next",)), (Quit(), ("quit",))],
)
async def test_apply_hands_each_command_to_the_node(command, call) -> None:
    node = FakeNode()
    assert await apply(node, command) is None
    assert node.calls == [call] and node.emitted == []


async def test_apply_answers_questions() -> None:
    node = FakeNode()
    assert await apply(node, Status()) == StatusReply("12D3KooWfake", node.statistics())
    assert await apply(node, Help()) == HelpReply(HELP)
    assert node.calls == []


async def test_a_command_the_node_refuses_becomes_an_error_event() -> None:
    node = FakeNode(send_error=LocalProtocolError("you are not chatting with anyone right now"))
    assert await apply(node, Send("hi")) is None
    assert node.emitted == [events.Error("you are not chatting with anyone right now")]


async def test_typed_lines_and_json_lines_meet_in_the_same_commands() -> None:
    typed, piped = FakeNode(), FakeNode()
    for line, json_line in [("hello", '{"cmd": "send", "text": "hello"}'),
                            ("/next", '{"cmd": "next"}'), ("/quit", '{"cmd": "quit"}')]:
        await apply(typed, parse_user_line(line))
        await apply(piped, parse_command(json_line))
    assert typed.calls == piped.calls == [("send_text", "hello"), ("next",), ("quit",)]
