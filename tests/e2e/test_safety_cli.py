"""End to end: /block through --json, `strangers blocked` and `unblock`, with the price on
(10-bit identity proofs and stamps in every proposal)."""

from __future__ import annotations

import json
import os

import pytest

from strangers.testing import chat, run_cli, serve

pytestmark = pytest.mark.e2e

BITS = "10"


def test_a_blocked_stranger_is_never_matched_again_until_unblocked(procs, tmp_path, monkeypatch):
    monkeypatch.setenv("STRANGERS_POW_BITS", BITS)
    home_a = tmp_path / "a"
    env_a = {"STRANGERS_HOME": str(home_a)}
    env_b = {"STRANGERS_HOME": str(tmp_path / "b")}
    server, addr = serve()
    procs.append(server)
    a = chat(addr, "-i", "cinema", env=env_a)
    b = chat(addr, "-i", "cinema", "--identity", str(tmp_path / "b.key"), env=env_b)
    procs += [a, b]
    b_id = b.wait_for("ready")["peer_id"]
    assert a.wait_for("matched", timeout=30)["peer_id"] == b_id
    b.wait_for("matched", timeout=30)

    a.send({"cmd": "block"})
    blocked = a.wait_for("blocked")
    assert blocked == {"event": "blocked", "peer_id": b_id, "common_interests": ["cinema"]}
    left = a.wait_for("stranger_left")
    assert (left["reason"], left["by_us"]) == ("blocked", True)
    left_b = b.wait_for("stranger_left")
    assert (left_b["reason"], left_b["by_us"]) == ("next", False)  # an ordinary leave
    # both search again, alone together on this network: they would match within a second
    a.wait_for("searching")
    a.assert_no_event(lambda e: False, seconds=6)  # reads what comes for 6 s
    b.assert_no_event(lambda e: False, seconds=0.1)
    assert [e["event"] for e in a.events].count("matched") == 1
    assert [e["event"] for e in b.events].count("matched") == 1
    a.stop()

    env = {**os.environ, **env_a}
    listed = run_cli("blocked", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)["blocked"]
    assert [(e["peer_id"], e["common_interests"]) for e in entries] == [(b_id, ["cinema"])]
    assert run_cli("unblock", b_id, env=env).returncode == 0
    again = run_cli("unblock", b_id, env=env)
    assert again.returncode == 1 and "not blocked" in again.stderr.decode()

    a2 = chat(addr, "-i", "cinema", env=env_a)  # the same user, unblocked: they meet again
    procs.append(a2)
    assert a2.wait_for("matched", timeout=30)["peer_id"] == b_id

