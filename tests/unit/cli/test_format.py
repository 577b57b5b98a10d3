"""Events to ``--json`` objects (a public interface) and to the lines a person reads."""

from __future__ import annotations

import json

import pytest

from strangers.cli.format import HELP, event_to_json, format_event
from strangers.node import events

PEER = "12D3KooWGzh8T3LSnzJyBQ6Ch5bCzVrBeHXVuN2uLFzvDJ4y8rX3"
ADDR = f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}"


# --- JSON: one documented object per event ------------------------------------------------


JSON_CASES = [
    (events.Ready(PEER, (ADDR,)), {"event": "ready", "peer_id": PEER, "addrs": [ADDR]}),
    (events.Ready(PEER, ()), {"event": "ready", "peer_id": PEER, "addrs": []}),
    (events.Searching(("cinema", "jazz")), {"event": "searching", "interests": ["cinema", "jazz"], "random": False,
                                                     "lang": ""}),
    (events.Searching(("jazz",), False, "fr"), {"event": "searching", "interests": ["jazz"],
                                                "random": False, "lang": "fr"}),
    (events.Searching((), True), {"event": "searching", "interests": [], "random": True,
                                            "lang": ""}),
    (events.Advertised(("jazz",), 7), {"event": "advertised", "interests": ["jazz"], "peers": 7}),
    (
        events.Matched(PEER, ("cinema", "jazz"), "1234 5678 9012", True),
        {"event": "matched", "peer_id": PEER, "common_interests": ["cinema", "jazz"],
         "safety_code": "1234 5678 9012", "initiator": True, "path": "direct", "lang": "",
         "contact": "", "question": ""},
    ),
    (
        events.Matched(PEER, (), "0000", False),
        {"event": "matched", "peer_id": PEER, "common_interests": [], "safety_code": "0000", "initiator": False,
         "path": "direct", "lang": "", "contact": "", "question": ""},
    ),
    (
        events.Matched(PEER, (), "0000", False, "relayed", "fr"),
        {"event": "matched", "peer_id": PEER, "common_interests": [], "safety_code": "0000", "initiator": False,
         "path": "relayed", "lang": "fr", "contact": "", "question": ""},
    ),
    (events.PathChanged("direct"), {"event": "path", "path": "direct"}),
    (events.PathChanged("relayed"), {"event": "path", "path": "relayed"}),
    (events.MessageReceived(3, "hi\x1b[2J"), {"event": "message", "id": 3, "text": "hi\x1b[2J",
                                               "hidden": False, "warnings": []}),
    (events.MessageReceived(4, "snap: x_y", True, ("handle",)),
     {"event": "message", "id": 4, "text": "snap: x_y", "hidden": True, "warnings": ["handle"]}),
    (events.Revealed(4, "snap: x_y"), {"event": "revealed", "id": 4, "text": "snap: x_y"}),
    (events.Reported("/home/u/reports/r.json"), {"event": "reported",
                                                 "path": "/home/u/reports/r.json"}),
    (events.Saved("/home/u/Documents/strangers-chat.txt"),
     {"event": "saved", "path": "/home/u/Documents/strangers-chat.txt"}),
    (events.Language("fr"), {"event": "language", "lang": "fr"}),
    (events.KeepOffered(), {"event": "keep_offered"}),
    (events.KeepAsked(), {"event": "keep_asked"}),
    (events.Kept("ana", PEER), {"event": "kept", "name": "ana", "peer_id": PEER}),
    (events.Matched(PEER, (), "0", True, "direct", "", "ana"),
     {"event": "matched", "peer_id": PEER, "common_interests": [], "safety_code": "0",
      "initiator": True, "path": "direct", "lang": "", "contact": "ana", "question": ""}),
    (events.Matched(PEER, (), "0", False, "direct", "", "", "why?"),
     {"event": "matched", "peer_id": PEER, "common_interests": [], "safety_code": "0",
      "initiator": False, "path": "direct", "lang": "", "contact": "", "question": "why?"}),
    (events.QuestionJoined(1, PEER, ("jazz",), "1 2 3", "fr"),
     {"event": "question_joined", "stranger": 1, "peer_id": PEER, "common_interests": ["jazz"],
      "safety_code": "1 2 3", "lang": "fr"}),
    (events.QuestionMessage(2, "hi"), {"event": "question_message", "stranger": 2, "text": "hi"}),
    (events.QuestionTyping(2, True), {"event": "question_typing", "stranger": 2, "active": True}),
    (events.QuestionLeft(1, "next"), {"event": "question_left", "stranger": 1, "reason": "next",
                                      "by_us": False}),
    (events.Sent(4, "hello"), {"event": "sent", "id": 4, "text": "hello"}),
    (events.Delivered(4), {"event": "delivered", "id": 4}),
    (events.Typing(True), {"event": "typing", "active": True}),
    (events.Typing(False), {"event": "typing", "active": False}),
    (events.StrangerLeft("next"), {"event": "stranger_left", "reason": "next", "by_us": False}),
    (events.StrangerLeft("quit", by_us=True), {"event": "stranger_left", "reason": "quit", "by_us": True}),
    (events.Warning("no DHT peers yet"), {"event": "warning", "message": "no DHT peers yet"}),
    (events.Error("bad command"), {"event": "error", "message": "bad command"}),
    (events.Stopped(), {"event": "stopped"}),
    (events.Idle(), {"event": "idle"}),
    (events.Reachability(True, (ADDR,)), {"event": "reachability", "reachable": True, "addrs": [ADDR],
                                          "relays": 0}),
    (events.Reachability(False, (f"/ip4/10.0.0.1/tcp/1/p2p/{PEER}/p2p-circuit/p2p/{PEER}",), 2),
     {"event": "reachability", "reachable": False,
      "addrs": [f"/ip4/10.0.0.1/tcp/1/p2p/{PEER}/p2p-circuit/p2p/{PEER}"], "relays": 2}),
    (events.LobbyJoined("strangers/v1/lobby/general/chess", 2),
     {"event": "joined", "topic": "strangers/v1/lobby/general/chess", "peers": 2}),
    (events.LobbyMessage("ab12", PEER, "brave-otter-42", "hi\x1b[2J"),
     {"event": "lobby_message", "id": "ab12", "from": PEER, "nick": "brave-otter-42",
      "text": "hi\x1b[2J"}),
    (events.LobbySent("cd34", "hello"), {"event": "lobby_sent", "id": "cd34", "text": "hello"}),
    (events.LobbyMembers(6), {"event": "members", "count": 6}),
    (events.ChatInvited(PEER, "calm-yak-07"),
     {"event": "chat_invited", "peer_id": PEER, "nick": "calm-yak-07"}),
    (events.LobbyCounts((("chess", 3), ("go", 0))),
     {"event": "lobby_counts", "lobbies": {"chess": 3, "go": 0}}),
    (events.Blocked(PEER, ("cinema",)),
     {"event": "blocked", "peer_id": PEER, "common_interests": ["cinema"]}),
]


@pytest.mark.parametrize(("event", "expected"), JSON_CASES, ids=lambda value: type(value).__name__)
def test_event_to_json(event: events.Event, expected: dict[str, object]) -> None:
    obj = event_to_json(event)
    assert obj == expected
    assert list(obj) == list(expected)  # same keys, same order
    # exactly what a program reading the line gets back (texts are not altered in JSON)
    assert json.loads(json.dumps(obj, ensure_ascii=False)) == expected


def test_every_event_type_has_a_json_form_and_a_text_rule() -> None:
    event_types = set(events.Event.__args__)  # type: ignore[attr-defined]
    covered = {type(event) for event, _expected in JSON_CASES}
    assert covered == event_types
    names = {expected["event"] for _event, expected in JSON_CASES}
    assert names == {
        "ready", "searching", "advertised", "matched", "path", "message", "sent", "delivered",
        "typing", "stranger_left", "warning", "error", "stopped", "idle", "reachability", "reported",
        "revealed",
        "joined", "lobby_message", "lobby_sent", "members", "lobby_counts", "chat_invited",
        "blocked",
        "saved", "language", "keep_offered", "keep_asked", "kept",
        "question_joined", "question_message", "question_typing", "question_left",
    }
    for event, _expected in JSON_CASES:
        format_event(event)  # does not raise


class NotAnEvent:
    pass


@pytest.mark.parametrize("function", [event_to_json, format_event])
@pytest.mark.parametrize("thing", [NotAnEvent(), None, "ready", {"event": "ready"}])
def test_unknown_events_are_a_type_error(function, thing: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="unknown event") as info:
        function(thing)
    assert repr(thing)[:20] in str(info.value)


# --- text: what a person reads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (events.Ready(PEER, (ADDR,)), f"You are {PEER[-8:]} today (a new stranger every run)."),
        (events.Searching(("jazz",)), "Looking for someone who likes jazz..."),
        (events.Searching(("cinema", "jazz")), "Looking for someone who likes cinema and jazz..."),
        (events.Searching(("cinema", "jazz", "chess")), "Looking for someone who likes cinema, jazz and chess..."),
        (events.Searching(()), "Looking for a random stranger..."),
        (events.Searching((), True), "Looking for a random stranger..."),
        (
            events.Searching(("jazz",), True),
            "Nobody who shares your interests is around, so the next stranger "
            "will be completely random. Try adding more interests!",
        ),
        (events.MessageReceived(1, "hi there"), "Stranger: hi there"),
        (events.MessageReceived(1, "café 🎸 👨\u200d👩\u200d👧"), "Stranger: café 🎸 👨\u200d👩\u200d👧"),
        (events.Sent(2, "hello"), "You: hello"),
        (events.MessageReceived(3, "rude words", hidden=True),
         "Stranger: [a message hidden by your word filter; /reveal shows it]"),
        (events.MessageReceived(3, "t.me/x or @x", warnings=("link", "handle")),
         "! Careful: the next message holds a link and an account on another app. Strangers who"
         " move you to another app or site are a classic first step of grooming; you never have"
         " to follow.\nStranger: t.me/x or @x"),
        (events.Revealed(3, "rude\x1b words"), "Stranger (revealed): rude\\x1b words"),
        (events.StrangerLeft("disconnected"), "Stranger has disconnected."),
        (events.StrangerLeft("timeout", by_us=False), "Stranger has disconnected."),
        (events.StrangerLeft("next", by_us=True), "You have disconnected."),
        (events.Warning("no DHT peers yet"), "! no DHT peers yet"),
        (events.Error("bad command"), "! error: bad command"),
        (events.Idle(), "You stopped looking. /next looks again."),
    ],
)
def test_format_event(event: events.Event, text: str) -> None:
    assert format_event(event) == text


@pytest.mark.parametrize(
    "event", [events.Advertised(("jazz",), 3), events.Delivered(1), events.Typing(True), events.Typing(False),
              events.Stopped()],
    ids=lambda value: type(value).__name__,
)
def test_events_a_person_does_not_see(event: events.Event) -> None:
    assert format_event(event) is None


@pytest.mark.parametrize(
    ("common", "line"),
    [
        (("jazz",), "You both like jazz."),
        (("cinema", "jazz"), "You both like cinema and jazz."),
        (("cinema", "jazz", "chess"), "You both like cinema, jazz and chess."),
    ],
)
def test_matched_with_common_interests(common: tuple[str, ...], line: str) -> None:
    text = format_event(events.Matched(PEER, common, "1234 5678", True))
    assert text == "\n".join([
        "You're now chatting with a random stranger. Say hi!",
        line,
        "Safety code: 1234 5678 (compare it to be sure nobody is in between)",
    ])


def test_matched_without_common_interests_says_nothing_about_them() -> None:
    text = format_event(events.Matched(PEER, (), "1234 5678", False))
    assert text == (
        "You're now chatting with a random stranger. Say hi!\n"
        "Safety code: 1234 5678 (compare it to be sure nobody is in between)"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"),  # clear screen, set title, bell
        ("hi\nStranger has disconnected.", "hi\\nStranger has disconnected."),  # a fake line of ours
        ("over\rwrite", "over\\rwrite"),
        ("back\x08space", "back\\x08space"),
        ("\x9b31m", "\\x9b31m"),  # 8-bit CSI
        ("tab\there", "tab\\there"),
        ("\x00", "\\x00"),
    ],
)
def test_a_strangers_control_characters_cannot_drive_our_terminal(text: str, shown: str) -> None:
    line = format_event(events.MessageReceived(1, text))
    assert line == f"Stranger: {shown}"
    assert "\n" not in line and "\x1b" not in line and "\r" not in line


def test_help_lists_the_commands() -> None:
    for command in ("/next", "/quit", "/help"):
        assert command in HELP


def test_a_strangers_bidi_override_cannot_reorder_the_screen() -> None:
    line = format_event(events.MessageReceived(1, "abc\u202edcba\u2066x"))
    assert line == "Stranger: abc\ufffddcba\ufffdx"


def test_a_kept_identity_is_not_called_new() -> None:
    line = format_event(events.Ready("12D3KooWabcdefgh", (), persistent=True))
    assert "identity" in line and "new stranger" not in line


def test_the_path_of_a_chat() -> None:
    """``matched`` names the path; a ``path`` event and a line tell when it changes."""
    relayed = events.Matched(PEER, (), "1234", True, "relayed")
    assert event_to_json(relayed)["path"] == "relayed"
    assert event_to_json(events.Matched(PEER, (), "1234", True))["path"] == "direct"
    assert "Through a relay" in (format_event(relayed) or "")
    assert "relay" not in (format_event(events.Matched(PEER, (), "1234", True)) or "")
    assert event_to_json(events.PathChanged("direct")) == {"event": "path", "path": "direct"}
    assert format_event(events.PathChanged("direct")) == "Now connected directly to the stranger."
    assert "through a relay" in (format_event(events.PathChanged("relayed")) or "")


def test_lobby_counts_line_names_the_busy_lobbies_only() -> None:
    from strangers.cli.format import format_lobby_counts

    assert format_lobby_counts((("chess", 0),)) is None
    line = format_lobby_counts((("chess", 3), ("go", 0), ("jazz", 1)))
    assert line is not None and "3 in the chess lobby and 1 in the jazz lobby" in line
    assert "strangers lobby 'chess'" in line
    assert format_event(events.LobbyMessage("1", PEER, "n", "a\x1b[2J")) == "n: a\\x1b[2J"
