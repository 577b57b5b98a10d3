"""``--json`` command lines: every command, and a helpful CommandError for every bad line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.cli.commands import (
    MAX_COMMAND_LINE,
    CommandError,
    Next,
    Quit,
    Send,
    SetTyping,
    Status,
    parse_command,
)
from strangers.errors import StrangersError


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ('{"cmd": "send", "text": "hi"}', Send("hi")),
        ('{"cmd": "send", "text": "  spaced out  "}', Send("  spaced out  ")),  # kept as typed
        ('{"cmd": "send", "text": "caf\\u00e9 \\ud83c\\udfb8\\nline two"}', Send("café 🎸\nline two")),
        ('{"cmd": "typing", "active": true}', SetTyping(True)),
        ('{"cmd": "typing", "active": false}', SetTyping(False)),
        ('{"cmd": "next"}', Next()),
        ('{"cmd": "quit"}', Quit()),
        ('{"cmd": "status"}', Status()),
        ('  {"cmd": "quit"}  \n', Quit()),  # the newline of the line is fine
        ('{"cmd": "next", "extra": [1, 2]}', Next()),  # unknown fields are ignored
        ('{"text": "hi", "cmd": "send", "id": 7}', Send("hi")),
    ],
)
def test_every_command(line: str, command: object) -> None:
    assert parse_command(line) == command
    assert parse_command(line.encode()) == command  # stdin hands us bytes


def test_commands_are_frozen_values() -> None:
    command = parse_command('{"cmd": "send", "text": "hi"}')
    with pytest.raises(AttributeError):
        command.text = "other"  # type: ignore[misc, union-attr]


def bad(line: str | bytes, *fragments: str) -> CommandError:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    return info.value


@pytest.mark.parametrize("line", ["", "   ", "{", "hello", "{'cmd': 'quit'}", '{"cmd": "quit"', "quit", "[1,"])
def test_not_json(line: str) -> None:
    bad(line, "not JSON:")


def test_not_utf8() -> None:
    bad(b'{"cmd": "send", "text": "\xff\xfe"}', "not JSON")


def test_absurdly_nested_json_is_a_command_error() -> None:
    bad("[" * (MAX_COMMAND_LINE // 2), "not JSON")
    nested = "{\"cmd\": \"send\", \"text\": " + "[" * 30_000 + "]" * 30_000 + "}"
    assert len(nested) < MAX_COMMAND_LINE
    bad(nested, "not JSON")


@pytest.mark.parametrize(("line", "shown"), [("[]", "[]"), ("1", "1"), ('"quit"', "'quit'"), ("null", "None")])
def test_not_an_object(line: str, shown: str) -> None:
    bad(line, "a command must be a JSON object", shown)


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("{}", "None"),
        ('{"command": "quit"}', "None"),
        ('{"cmd": "dance"}', "'dance'"),
        ('{"cmd": "QUIT"}', "'QUIT'"),
        ('{"cmd": ""}', "''"),
        ('{"cmd": 1}', "1"),
        ('{"cmd": null}', "None"),
        ('{"cmd": true}', "True"),
        ('{"cmd": ["quit"]}', "['quit']"),  # not hashable: once a TypeError
        ('{"cmd": {"quit": 1}}', "{'quit': 1}"),
    ],
)
def test_unknown_command_lists_the_known_ones(line: str, shown: str) -> None:
    bad(line, f"unknown command {shown}",
        "(send, typing, next, stop, quit, status, report, reveal, block, save, lang, keep)")


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('{"cmd": "send"}', "None"),
        ('{"cmd": "send", "text": ""}', "''"),
        ('{"cmd": "send", "text": " \\n\\t "}', "' \\n\\t '"),
        ('{"cmd": "send", "text": 1}', "1"),
        ('{"cmd": "send", "text": null}', "None"),
        ('{"cmd": "send", "text": ["hi"]}', "['hi']"),
        ('{"cmd": "send", "message": "hi"}', "None"),
    ],
)
def test_send_needs_text(line: str, shown: str) -> None:
    bad(line, 'send needs a non-empty "text" string, got ' + shown)


def test_the_echoed_value_is_shortened() -> None:
    error = bad(json.dumps({"cmd": "send", "text": ["x" * 1000]}), "send needs")
    assert len(str(error)) < 200
    error = bad(json.dumps({"cmd": "x" * 1000}), "unknown command")
    assert len(str(error)) < 200
    error = bad(json.dumps(["x" * 1000]), "must be a JSON object")
    assert len(str(error)) < 200


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('{"cmd": "typing"}', "None"),
        ('{"cmd": "typing", "active": "true"}', "'true'"),
        ('{"cmd": "typing", "active": 1}', "1"),
        ('{"cmd": "typing", "active": 0}', "0"),
        ('{"cmd": "typing", "active": null}', "None"),
    ],
)
def test_typing_needs_a_boolean(line: str, shown: str) -> None:
    bad(line, 'typing needs "active": true or false, got ' + shown)


def test_line_length_limit() -> None:
    padding = MAX_COMMAND_LINE - len('{"cmd": "send", "text": ""}')
    longest = '{"cmd": "send", "text": "' + "x" * padding + '"}'
    assert len(longest) == MAX_COMMAND_LINE
    assert parse_command(longest) == Send("x" * padding)
    too_long = longest[:-2] + 'x"}'
    bad(too_long, "command line too long", f"({MAX_COMMAND_LINE + 1} bytes, at most {MAX_COMMAND_LINE})")
    bad(too_long.encode(), "command line too long")


def test_command_error_is_what_the_json_loop_catches() -> None:
    assert issubclass(CommandError, StrangersError)


@given(st.text(max_size=200))
def test_any_text_line_is_a_command_or_a_command_error(line: str) -> None:
    try:
        parse_command(line)
    except CommandError:
        pass


@given(st.binary(max_size=200))
def test_any_bytes_line_is_a_command_or_a_command_error(line: bytes) -> None:
    try:
        parse_command(line)
    except CommandError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
    | st.sampled_from(["send", "typing", "next", "quit", "status"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["cmd", "text", "active", "x"]), json_values, max_size=4))
def test_any_json_object_is_a_command_or_a_command_error(obj: dict[str, object]) -> None:
    try:
        command = parse_command(json.dumps(obj))
    except CommandError:
        return
    assert obj["cmd"] in ("send", "typing", "next", "quit", "status")
    assert isinstance(command, (Send, SetTyping, Next, Quit, Status))


def test_report_and_reveal_commands() -> None:
    from strangers.cli.commands import Report, Reveal, parse_command, parse_user_line

    assert parse_command('{"cmd": "report", "reason": " asked my age "}') == Report("asked my age")
    assert parse_command('{"cmd": "report"}') == Report("")
    assert parse_command('{"cmd": "reveal"}') == Reveal()
    assert parse_user_line("/report he was rude") == Report("he was rude")
    assert parse_user_line("/REPORT") == Report("")
    assert parse_user_line("/reveal") == Reveal()
    for bad in ['{"cmd": "report", "reason": 5}', '{"cmd": "report", "reason": "' + "x" * 1001 + '"}']:
        with pytest.raises(CommandError, match="reason"):
            parse_command(bad)
    with pytest.raises(CommandError):
        parse_user_line("/report " + "x" * 1001)


def test_save_and_lang_commands() -> None:
    from strangers.cli.commands import Save, SetLang, parse_user_line

    assert parse_command('{"cmd": "save"}') == Save(None)
    assert parse_command('{"cmd": "save", "path": "/tmp/x.txt"}') == Save("/tmp/x.txt")
    assert parse_command('{"cmd": "lang", "lang": "fr"}') == SetLang("fr")
    assert parse_user_line("/save") == Save(None)
    assert parse_user_line("/save  my chat.txt ") == Save("my chat.txt")
    assert parse_user_line("/lang fr") == SetLang("fr")
    assert parse_user_line("/lang") == SetLang("")
    for line, fragment in (('{"cmd": "save", "path": 3}', "save takes"),
                           ('{"cmd": "save", "path": "a\\u0000b"}', "save takes"),
                           ('{"cmd": "lang"}', "lang needs"), ('{"cmd": "lang", "lang": 1}', "lang needs")):
        with pytest.raises(CommandError, match=fragment):
            parse_command(line)
