"""End to end: a curator publishes a blocklist; a subscriber never matches anyone on it."""

from __future__ import annotations

import json
import subprocess

import pytest

from strangers.testing import chat, serve
from strangers.testing import run_cli as run_bytes

pytestmark = pytest.mark.e2e


def run_cli(*args: str) -> subprocess.CompletedProcess:
    done = run_bytes(*args, timeout=60)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def test_a_listed_stranger_is_never_matched_until_removed_and_republished(procs, tmp_path):
    server, addr = serve()
    procs.append(server)
    bad_identity = tmp_path / "bad.key"
    bad_id = json.loads(run_cli("id", "--identity", str(bad_identity), "--json").stdout)["peer_id"]

    key = json.loads(run_cli("list", "create", "school", "--json").stdout)["key"]
    assert len(key) == 64
    assert run_cli("list", "add", "school", bad_id, "--reason", "spam").returncode == 0
    published = run_cli("list", "publish", "school", "--bootstrap", addr, "--no-mdns", "--json")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["stored"] >= 1

    env = {"STRANGERS_LIST_REFRESH": "1"}
    guarded = chat(addr, "-i", "listtest", "--interests-only", "--trust-list", key, env=env)
    bad = chat(addr, "-i", "listtest", "--interests-only", "--identity", str(bad_identity))
    procs += [guarded, bad]
    guarded.wait_for("searching")
    bad.wait_for("searching")
    # they find each other on the DHT within a second or two; nothing may come of it
    guarded.assert_no_event(lambda e: e["event"] == "matched", 6)
    bad.assert_no_event(lambda e: e["event"] == "matched", 0.1)
    bad.send({"cmd": "quit"})
    assert bad.wait_exit() == 0

    # an honest stranger still meets the guarded user
    honest = chat(addr, "-i", "listtest", "--interests-only")
    procs.append(honest)
    honest_id = honest.wait_for("ready")["peer_id"]
    matched = guarded.wait_for("matched", timeout=30)
    assert matched["peer_id"] == honest_id
    honest.send({"cmd": "quit"})
    guarded.wait_for("stranger_left", timeout=10)

    # the curator takes the stranger off the list and publishes again: within a refresh
    # the two can meet
    assert run_cli("list", "remove", "school", bad_id).returncode == 0
    republished = run_cli("list", "publish", "school", "--bootstrap", addr, "--no-mdns", "--json")
    assert republished.returncode == 0 and json.loads(republished.stdout)["version"] == 3
    back = chat(addr, "-i", "listtest", "--interests-only", "--identity", str(bad_identity))
    procs.append(back)
    assert guarded.wait_for("matched", timeout=40)["peer_id"] == bad_id
