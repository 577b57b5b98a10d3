"""End to end: /report saves a signed file of the stranger's texts; verify-report checks it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from strangers.testing import chat, serve
from strangers.testing import run_cli as run_bytes

pytestmark = pytest.mark.e2e


def run_cli(*args: str) -> subprocess.CompletedProcess:
    done = run_bytes(*args)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def test_a_report_holds_the_strangers_texts_and_any_edit_is_found(procs, tmp_path):
    server, addr = serve()
    procs.append(server)
    words = tmp_path / "words.txt"
    words.write_text("# mine\nrude word\n")
    a = chat(addr, "-i", "reports", "--filter-words", str(words))
    b = chat(addr, "-i", "reports")
    procs += [a, b]
    a_match = a.wait_for("matched", timeout=20)
    b.wait_for("matched", timeout=20)
    texts = ["hi", "how old are you?", "let's talk on another app"]
    for text in texts:
        b.send({"cmd": "send", "text": text})
        assert a.wait_for(lambda e, t=text: e["event"] == "message" and e["text"] == t)
    a.send({"cmd": "report", "reason": "asked my age"})
    path = Path(a.wait_for("reported")["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.parent.name == "reports"
    document = json.loads(path.read_text())
    assert [m["text"] for m in document["messages"]] == texts
    assert document["stranger"]["peer_id"] == a_match["peer_id"]

    intact = run_cli("verify-report", str(path))
    assert intact.returncode == 0, intact.stderr
    assert "intact: 3 messages" in intact.stdout

    edited = tmp_path / "edited.json"
    document["messages"][1]["text"] = "how are you?"
    edited.write_text(json.dumps(document))
    bad = run_cli("verify-report", str(edited))
    assert bad.returncode != 0
    assert "text 2 (id 2) was edited" in bad.stderr

    removed = json.loads(path.read_text())
    del removed["messages"][1]
    edited.write_text(json.dumps(removed))
    bad = run_cli("verify-report", str(edited))
    assert bad.returncode != 0 and "text 2 is missing" in bad.stderr

    # local filters: a warning before a contact handle, a hidden (never dropped) message
    b.send({"cmd": "send", "text": "add me on snap: cool_guy"})
    warned = a.wait_for("message")
    assert warned["warnings"] == ["handle"] and warned["hidden"] is False
    b.send({"cmd": "send", "text": "a RUDE   word here"})
    hidden = a.wait_for("message")
    assert hidden["hidden"] is True and hidden["text"] == "a RUDE   word here"
    a.send({"cmd": "reveal"})
    assert a.wait_for("revealed") == {"event": "revealed", "id": hidden["id"],
                                      "text": "a RUDE   word here"}

    # after the stranger left, the last chat can still be reported
    b.send({"cmd": "quit"})
    a.wait_for("stranger_left", timeout=10)
    a.send({"cmd": "report"})
    again = a.wait_for(lambda e: e["event"] == "reported" and e["path"] != str(path))
    assert run_cli("verify-report", again["path"]).returncode == 0
    assert os.path.dirname(again["path"]) == str(path.parent)
