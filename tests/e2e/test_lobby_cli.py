"""End to end: ``strangers lobby INTEREST --json`` and its lines, real processes on loopback."""

from __future__ import annotations

import pytest

from strangers.testing import LOOPBACK, Strangers, run_cli, serve

pytestmark = pytest.mark.e2e


def lobby(bootstrap: str, interest: str, *extra: str) -> Strangers:
    return Strangers("lobby", interest, "--json", "--listen", LOOPBACK, "--no-mdns",
                     "--bootstrap", bootstrap, *extra)


def test_three_members_talk_and_a_fourth_in_another_lobby_hears_nothing(procs):
    server, addr = serve()
    procs.append(server)
    members = [lobby(addr, name) for name in ("chess", "Chess", " CHESS ")]
    outsider = lobby(addr, "go")
    procs.extend([*members, outsider])
    for member in members:
        joined = member.wait_for("joined", timeout=30)
        assert joined["topic"] == "strangers/v1/lobby/general/chess"
    for member in members:
        member.wait_for(lambda e: e["event"] == "members" and e["count"] >= 3, timeout=30)
    ids = [next(e["peer_id"] for e in m.events if e["event"] == "ready") for m in members]
    members[0].send({"cmd": "send", "text": "anyone up for a game?"})
    sent = members[0].wait_for("lobby_sent")
    for member in members[1:]:
        got = member.wait_for("lobby_message", timeout=15)
        assert (got["id"], got["from"], got["text"]) == (sent["id"], ids[0], "anyone up for a game?")
        assert got["nick"].count("-") == 2
    members[1].send({"cmd": "send", "text": "me"})
    reply = members[0].wait_for("lobby_message", timeout=15)
    assert reply["from"] == ids[1] and reply["text"] == "me"
    members[2].send({"cmd": "send", "text": ""})
    assert "empty" in members[2].wait_for("error")["message"]
    members[2].send({"cmd": "dance"})
    assert "unknown command" in members[2].wait_for("error")["message"]
    outsider.assert_no_event(lambda e: e["event"] == "lobby_message", seconds=2)
    for member in members:
        member.send({"cmd": "quit"})
        assert member.wait_exit(timeout=15) == 0
        assert "Traceback" not in member.stderr


def test_a_bad_interest_is_a_startup_error():
    result = run_cli("lobby", "   ", "--no-bootstrap", "--no-mdns", "--listen", LOOPBACK)
    assert result.returncode == 1
    assert b"empty" in result.stderr and b"Traceback" not in result.stderr


def test_the_lines_ui_says_the_room_is_public():
    result = run_cli("lobby", "chess", "--no-bootstrap", "--no-mdns", "--listen", LOOPBACK,
                     timeout=60, input=b"hello room\n/members\n/help\n/quit\n")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "public" in out and "chess" in out
    assert "you: hello room" in out
    assert "in the room" in out and "/members" in out


def test_chat_from_the_lobby_needs_consent_and_gives_a_safety_code(procs):
    server, addr = serve()
    procs.append(server)
    alice, bob = lobby(addr, "chess"), lobby(addr, "chess")
    procs.extend([alice, bob])
    for member in (alice, bob):
        member.wait_for(lambda e: e["event"] == "members" and e["count"] >= 2, timeout=30)
    bob_id = next(e["peer_id"] for e in bob.events if e["event"] == "ready")
    alice_id = next(e["peer_id"] for e in alice.events if e["event"] == "ready")
    alice.send({"cmd": "chat", "peer_id": bob_id})
    invited = bob.wait_for("chat_invited", timeout=20)
    assert invited["peer_id"] == alice_id
    bob.send({"cmd": "accept", "peer_id": invited["nick"]})
    match_a = alice.wait_for("matched", timeout=20)
    match_b = bob.wait_for("matched", timeout=20)
    assert match_a["safety_code"] == match_b["safety_code"]
    assert match_a["peer_id"] == bob_id and match_b["peer_id"] == alice_id
    alice.send({"cmd": "private", "text": "just between us"})
    assert bob.wait_for("message", timeout=10)["text"] == "just between us"
    alice.send({"cmd": "send", "text": "and hello room"})
    assert bob.wait_for("lobby_message", timeout=10)["text"] == "and hello room"
    bob.send({"cmd": "next"})
    assert alice.wait_for("stranger_left", timeout=10)["reason"] == "next"
    alice.assert_no_event(lambda e: e["event"] == "searching", seconds=1)
