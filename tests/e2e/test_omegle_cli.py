"""End to end, issue 12 through the real executable and ``--json``: ``strangers ask`` and
``--questions`` (the relaying itself: tests/integration/test_question_mode.py)."""

from __future__ import annotations

import pytest

from strangers.testing import LOOPBACK, Strangers, chat, serve

pytestmark = pytest.mark.e2e


def test_strangers_ask_finds_two_opted_in_strangers_who_see_the_question(procs):
    server, addr = serve()
    procs.append(server)
    a = chat(addr, "-i", "books", "--interests-only", "--questions", "--lang", "fr")
    b = chat(addr, "-i", "films", "--interests-only", "--questions", "--lang", "de")
    procs += [a, b]
    watcher = Strangers("ask", "Tea or coffee?", "-i", "books", "-i", "films", "--interests-only",
                        "--json", "--listen", LOOPBACK, "--no-mdns", "--bootstrap", addr)
    procs.append(watcher)
    latest = {}  # a stranger who leaves before the other comes is replaced
    while len(latest) < 2:
        event = watcher.wait_for("question_joined", timeout=30)
        latest[event["stranger"]] = event
    joined = list(latest.values())
    langs = {e["lang"] for e in joined}
    assert langs == {"fr", "de"}  # each stranger's language, as it told it
    for node in (a, b):
        me = node.wait_for("ready")["peer_id"]
        code = next(e["safety_code"] for e in joined if e["peer_id"] == me)
        matched = node.wait_for(lambda e, code=code: e.get("event") == "matched" and e["safety_code"] == code,
                                timeout=20)
        assert matched["question"] == "Tea or coffee?" and matched["lang"] == ""  # the watcher told none
    watcher.send({"cmd": "send", "text": "hi"})
    assert "watching" in watcher.wait_for("error")["message"]
    watcher.send({"cmd": "quit"})
    assert watcher.wait_exit() == 0
    for node in (a, b):  # the strangers are told the watcher left
        assert node.wait_for("stranger_left")["by_us"] is False
