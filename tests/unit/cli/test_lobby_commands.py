"""cli/lobby.py: the lobby's commands (JSON and typed) and its lines (pure parts)."""

from __future__ import annotations

import pytest

from strangers.cli.commands import CommandError
from strangers.cli.lobby import (
    PUBLIC_NOTICE,
    Answer,
    EndChat,
    Invite,
    Leave,
    LobbyHelp,
    Members,
    Private,
    Say,
    format_lobby_event,
    parse_lobby_command,
    parse_lobby_line,
)
from strangers.node import events

PEER = "12D3KooWGznHoRLrTLiC2SfdEaJbJyzmXH13Ncgi4gR6f4fHQryt"


def test_json_commands():
    assert parse_lobby_command('{"cmd": "send", "text": "hi"}') == Say("hi")
    assert parse_lobby_command(b'{"cmd": "quit"}') == Leave()
    assert parse_lobby_command('{"cmd": "members"}') == Members()
    assert parse_lobby_command('{"cmd": "chat", "peer_id": "12D3KooWx"}') == Invite("12D3KooWx")
    assert parse_lobby_command('{"cmd": "accept", "peer_id": "a"}') == Answer("a", True)
    assert parse_lobby_command('{"cmd": "decline", "peer_id": "a"}') == Answer("a", False)
    assert parse_lobby_command('{"cmd": "private", "text": "psst"}') == Private("psst")
    assert parse_lobby_command('{"cmd": "next"}') == EndChat()
    for bad, why in [('{"cmd": "send", "text": " "}', "non-empty"), ("[]", "JSON object"),
                     ("nope", "not JSON"), ('{"cmd": "dance"}', "unknown command"),
                     ('{"cmd": "chat"}', "peer_id"), ('{"cmd": "private", "text": 3}', "non-empty"),
                     ("x" * 70000, "too long")]:
        with pytest.raises(CommandError, match=why):
            parse_lobby_command(bad)


def test_typed_lines():
    assert parse_lobby_line("hello room") == Say("hello room")
    assert parse_lobby_line("//quit is a word") == Say("/quit is a word")
    assert parse_lobby_line("/QUIT") == Leave()
    assert parse_lobby_line("/who") == Members()
    assert parse_lobby_line("/help") == LobbyHelp()
    assert parse_lobby_line("/chat brave-otter-42") == Invite("brave-otter-42")
    assert parse_lobby_line("/accept brave-otter-42") == Answer("brave-otter-42", True)
    assert parse_lobby_line("/decline x") == Answer("x", False)
    assert parse_lobby_line("hello", chatting=True) == Private("hello")
    assert parse_lobby_line("/lobby hi all", chatting=True) == Say("hi all")
    assert parse_lobby_line("/next") == EndChat()
    with pytest.raises(CommandError, match="whom"):
        parse_lobby_line("/chat")
    with pytest.raises(CommandError, match="unknown command"):
        parse_lobby_line("/dance")
    with pytest.raises(CommandError, match="empty"):
        parse_lobby_line("   ")


def test_lines_a_person_reads():
    joined = format_lobby_event(events.LobbyJoined("strangers/v1/lobby/general/chess", 2), "chess")
    assert joined is not None and PUBLIC_NOTICE in joined and "'chess'" in joined
    said = format_lobby_event(events.LobbyMessage("1", PEER, "brave-otter-42", "hi\x1b[2J"), "chess")
    assert said == "brave-otter-42: hi\\x1b[2J"  # no terminal escapes from strangers
    assert format_lobby_event(events.LobbySent("1", "yo"), "chess") == "you: yo"
    assert format_lobby_event(events.LobbyMembers(1), "chess") == "· 1 person in the room"
    assert format_lobby_event(events.LobbyMembers(6), "chess") == "· 6 people in the room"
    ready = format_lobby_event(events.Ready(PEER, ()), "chess", "calm-yak-07")
    assert ready is not None and "calm-yak-07" in ready and PEER[-8:] in ready
    assert format_lobby_event(events.Searching(()), "chess") is None
    assert format_lobby_event(events.Error("boom"), "chess") == "! error: boom"
