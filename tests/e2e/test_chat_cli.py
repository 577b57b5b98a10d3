"""End to end: the real ``strangers`` executable, several processes on loopback."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from strangers.testing import chat, run_cli, serve

pytestmark = pytest.mark.e2e


def _matched_pair(procs, *interests_a, extra_a=(), extra_b=(), interests_b=None):
    server, addr = serve()
    procs.append(server)
    a = chat(addr, *[x for i in interests_a for x in ("-i", i)], *extra_a)
    procs.append(a)
    b = chat(addr, *[x for i in (interests_b if interests_b is not None else interests_a)
                     for x in ("-i", i)], *extra_b)
    procs.append(b)
    return server, a, b


def test_two_strangers_meet_chat_and_part(procs):
    _server, a, b = _matched_pair(procs, "cinema", interests_b=("Cinema ", "jazz"))
    a.wait_for("ready")
    b.wait_for("ready")
    match_a = a.wait_for("matched", timeout=20)
    match_b = b.wait_for("matched", timeout=20)
    assert match_a["common_interests"] == ["cinema"]
    assert match_b["common_interests"] == ["cinema"]
    assert match_a["safety_code"] == match_b["safety_code"]
    assert len(match_a["safety_code"].replace(" ", "")) == 15
    ready_a = next(e for e in a.events if e["event"] == "ready")
    ready_b = next(e for e in b.events if e["event"] == "ready")
    assert match_a["peer_id"] == ready_b["peer_id"] and match_b["peer_id"] == ready_a["peer_id"]
    assert {match_a["initiator"], match_b["initiator"]} == {True, False}

    a.send({"cmd": "send", "text": "hello from a"})
    sent = a.wait_for("sent")
    got = b.wait_for("message")
    assert got["text"] == "hello from a" and got["id"] == sent["id"]
    assert a.wait_for("delivered")["id"] == sent["id"]

    b.send({"cmd": "typing", "active": True})
    assert a.wait_for("typing")["active"] is True
    b.send({"cmd": "send", "text": "héllo back 👋"})
    sent_b = b.wait_for("sent")
    assert a.wait_for("message")["text"] == "héllo back 👋"
    assert b.wait_for("delivered")["id"] == sent_b["id"]

    a.send({"cmd": "next"})
    left = b.wait_for("stranger_left", timeout=10)
    assert left["reason"] == "next" and left["by_us"] is False
    assert a.wait_for("stranger_left")["by_us"] is True
    # both look for the next stranger by themselves
    a.wait_for("searching")
    b.wait_for("searching")


def test_the_seed_is_dialled_on_the_connection_started_before_the_imports(procs):
    """strangers.preconnect: the executable connects to its --bootstrap peer first thing and
    sends its first flight (multistream-select and Noise's first message) while it imports;
    the host's dial takes that connection and goes on from there (told at -v)."""
    server, addr = serve()
    procs.append(server)
    a = chat(addr, "-i", "cinema", "-v")
    procs.append(a)
    a.wait_for("ready")
    told = f"dial to {addr} took the connection started before the imports, its first flight sent"
    deadline = time.monotonic() + 10  # stderr is read by a thread of its own: let it catch up
    while told not in a.stderr and time.monotonic() < deadline:
        time.sleep(0.05)
    assert told in a.stderr


def test_quit_tells_the_stranger_and_exits(procs):
    _server, a, b = _matched_pair(procs, "jazz")
    a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    # (a bye said in the first instant of a chat, before the responder's
    # ratchet can encrypt, reaches the stranger as a plain disconnection)
    b.send({"cmd": "send", "text": "bye now"})
    b.wait_for("delivered")
    b.send({"cmd": "quit"})
    assert a.wait_for("stranger_left", timeout=10)["reason"] == "quit"
    assert b.wait_exit(timeout=10) == 0
    assert "Traceback" not in b.stderr


def test_killed_stranger_is_noticed_within_seconds(procs):
    _server, a, b = _matched_pair(procs, "chess")
    a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    killed_at = time.monotonic()
    b.kill(signal.SIGKILL)
    left = a.wait_for("stranger_left", timeout=20)
    assert left["reason"] in ("disconnected", "timeout")
    assert time.monotonic() - killed_at < 5.0


def test_malformed_commands_get_errors_and_nothing_breaks(procs):
    _server, a, b = _matched_pair(procs, "go")
    a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    for bad in ["not json", "[1,2]", '{"cmd":"fly"}', '{"cmd":"send"}', '{"cmd":"send","text":""}',
                '{"cmd":"typing","active":"yes"}', '{"nocmd":1}', "x" * 70000, "\x00\xff"]:
        a.send(bad)
        assert a.wait_for("error")["message"]
    a.send({"cmd": "send", "text": "still here"})
    assert b.wait_for("message")["text"] == "still here"


def test_sending_when_alone_is_an_error_not_a_crash(procs):
    server, addr = serve()
    procs.append(server)
    lonely = chat(addr, "-i", "nobody-likes-this", "--interests-only")
    procs.append(lonely)
    lonely.wait_for("searching")
    lonely.send({"cmd": "send", "text": "anyone?"})
    assert "not chatting" in lonely.wait_for("error")["message"]
    lonely.send({"cmd": "quit"})
    assert lonely.wait_exit() == 0


def test_four_strangers_two_interests_pair_up_without_double_chats(procs):
    server, addr = serve()
    procs.append(server)
    people = [chat(addr, "-i", interest, "--interests-only")
              for interest in ("cinema", "cinema", "jazz", "jazz")]
    procs.extend(people)
    ids = [p.wait_for("ready")["peer_id"] for p in people]
    partners = {}
    for person, peer_id in zip(people, ids):
        match = person.wait_for("matched", timeout=30)
        partners[peer_id] = match["peer_id"]
    # everybody matched someone who matched them back, with the shared interest
    for me, other in partners.items():
        assert partners[other] == me
    assert partners[ids[0]] == ids[1] and partners[ids[2]] == ids[3]
    # nobody gets a second chat while the first one lasts
    people[0].assert_no_event(lambda e: False, 2.0)
    for person in people:
        person.assert_no_event(lambda e: False, 0.1)
        assert sum(1 for e in person.events if e.get("event") == "matched") == 1, person.events


def test_falls_back_to_a_random_stranger(procs):
    _server, a, b = _matched_pair(procs, "knitting", interests_b=("surfing",),
                                  extra_a=("--random-after", "1"), extra_b=("--random-after", "1"))
    match_a = a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    assert match_a["common_interests"] == []
    # The random phase is announced before a proposal of ours; a stranger's
    # proposal accepted at the moment the phase turned can come first.
    told = [e for e in a.events if e.get("event") == "searching" and e["random"]]
    assert all(e["interests"] == ["knitting"] for e in told)
    if match_a["initiator"]:
        assert told, a.events


def test_interests_only_never_falls_back(procs):
    _server, a, b = _matched_pair(procs, "knitting", interests_b=("surfing",),
                                  extra_a=("--random-after", "0.5", "--interests-only"),
                                  extra_b=("--random-after", "0.5"))
    a.wait_for("advertised", timeout=15)
    b.wait_for("advertised", timeout=15)
    a.assert_no_event(lambda e: e.get("event") == "matched", 4.0)
    b.assert_no_event(lambda e: e.get("event") == "matched", 0.1)


def test_no_interests_means_random_at_once(procs):
    _server, a, b = _matched_pair(procs)
    assert a.wait_for("matched", timeout=20)["common_interests"] == []
    b.wait_for("matched", timeout=20)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["chat", "--no-mdns", "--listen", "/ip4/127.0.0.1/udp/5"], "listen address"),
        (["chat", "--no-mdns", "--bootstrap", "/ip4/127.0.0.1/tcp/1"], "must end with /p2p/"),
        (["chat", "--no-mdns", "--bootstrap", "nonsense"], "bad bootstrap address"),
        (["chat", "--no-mdns", "--no-bootstrap", "-i", "   "], "is empty"),
        (["chat", "--no-mdns", "--no-bootstrap", "-i", "a\x1bb"], "control"),
        (["chat", "--no-mdns", "--no-bootstrap", "-i", "x" * 100], "too long"),
        (["chat", "--no-mdns", "--no-bootstrap", "--random-after", "-1"], "--random-after"),
    ],
)
def test_user_errors_are_one_clear_line(args, needle):
    result = run_cli(*args)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert needle in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_port_in_use_is_a_clear_error(procs):
    server, addr = serve()
    procs.append(server)
    port_addr = addr.split("/p2p/")[0]
    result = run_cli("serve", "--no-mdns", "--no-bootstrap", "--listen", port_addr)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "cannot listen" in err and "Traceback" not in err


def test_identity_file_is_private_and_stable(tmp_path):
    path = tmp_path / "me.key"
    first = run_cli("id", "--identity", str(path))
    assert first.returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = run_cli("id", "--identity", str(path))
    assert first.stdout == second.stdout and first.stdout.decode().startswith("12D3KooW")
    fresh = run_cli("id")
    assert fresh.stdout != first.stdout


def test_unreadable_identity_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.key"
    path.write_bytes(b"this is not a key")
    os.chmod(path, 0o600)
    result = run_cli("id", "--identity", str(path))
    assert result.returncode == 1
    assert "does not hold a libp2p private key" in result.stderr.decode()
    os.chmod(path, 0o644)
    result = run_cli("chat", "--identity", str(path), "--no-mdns", "--no-bootstrap")
    assert result.returncode == 1 and "readable by others" in result.stderr.decode()


def test_chat_keeps_identity(tmp_path, procs):
    path = tmp_path / "me.key"
    expected = run_cli("id", "--identity", str(path)).stdout.decode().strip()
    server, addr = serve()
    procs.append(server)
    me = chat(addr, "--identity", str(path))
    procs.append(me)
    assert me.wait_for("ready")["peer_id"] == expected


def test_serve_stops_cleanly_on_sigint(procs):
    server, _addr = serve()
    procs.append(server)
    server.kill(signal.SIGINT)
    assert server.wait_exit(timeout=10) == 130
    assert "Traceback" not in server.stderr
    assert "ERROR" not in server.stderr


def test_a_frozen_stranger_is_reported_as_timeout_and_life_goes_on(procs):
    """Issue 7: a stranger whose process stops (SIGSTOP, a laptop asleep) is reported gone
    within the keepalive bound (docs/protocol.md §6.6), and the node still serves its user."""
    server, a, b = _matched_pair(procs, "sleep")
    a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    a.send({"cmd": "send", "text": "still there?"})
    a.wait_for("delivered")
    frozen_at = time.monotonic()
    b.freeze()
    try:
        left = a.wait_for("stranger_left", timeout=30)
        noticed = time.monotonic() - frozen_at
        assert left == {"event": "stranger_left", "reason": "timeout", "by_us": False}
        assert noticed <= 20.0, f"a frozen stranger took {noticed:.1f} s to notice"
        a.send({"cmd": "status"})
        assert a.wait_for("status")["state"] in ("searching", "proposing")
        addr = next(e for e in server.events if e["event"] == "ready")["addrs"][0]
        c = chat(addr, "-i", "sleep")
        procs.append(c)
        assert a.wait_for("matched", timeout=30)["peer_id"] == c.wait_for("ready")["peer_id"]
    finally:
        b.thaw()
    assert "Traceback" not in a.stderr


INJECTED_FAILURE = '''
import strangers.node

def _broken_statistics(self):
    raise RuntimeError("injected by the test")

strangers.node.Node.statistics = _broken_statistics
'''


def test_an_unexpected_failure_is_one_error_line_and_exit_1_not_a_traceback(procs, tmp_path):
    """The last-resort handler (docs/protocol.md §7.3), through the real executable: a bug
    injected with a sitecustomize module (the product has no test hook)."""
    (tmp_path / "sitecustomize.py").write_text(INJECTED_FAILURE)
    # No empty entry: it would put the working directory (the repository, whose
    # strangers/ folder is not the installed package) on the child's path.
    paths = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    node = chat([], "--no-bootstrap", "-i", "bugs", env=env)
    procs.append(node)
    node.wait_for("ready", timeout=20)
    node.send({"cmd": "status"})
    error = node.wait_for("error", timeout=20)
    assert error["message"] == "unexpected RuntimeError: injected by the test (a bug in strangers)"
    assert node.wait_exit(timeout=10) == 1
    lines = node.stderr.splitlines()
    assert lines == ["strangers: error: unexpected RuntimeError: injected by the test (a bug in strangers)"]


def test_stop_leaves_and_waits_for_next(procs):
    """Omegle's Stop over --json: {"cmd":"stop"} leaves the stranger (or stops looking, then an
    "idle" event) and nobody is looked for until {"cmd":"next"}."""
    _server, a, b = _matched_pair(procs, "tango")
    a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    a.send({"cmd": "stop"})
    assert a.wait_for("stranger_left", timeout=10)["by_us"] is True
    assert b.wait_for("stranger_left", timeout=10)["by_us"] is False
    b.wait_for("searching")  # the stranger goes on looking (auto-next)...
    a.send({"cmd": "status"})
    assert a.wait_for("status")["state"] == "idle"  # ...we do not
    b.send({"cmd": "stop"})
    b.wait_for("idle")
    b.send({"cmd": "status"})
    assert b.wait_for("status")["state"] == "idle"
    a.send({"cmd": "next"})  # now it looks again (events after the status answer only)
    a.wait_for("searching")
