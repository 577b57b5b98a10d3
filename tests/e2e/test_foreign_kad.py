"""Interop (issue 9, item 6): a js-libp2p node speaking only /ipfs/kad/1.0.0 is the only bootstrap.

Strangers nodes find the strangers servers through it (the rendezvous key,
docs/protocol.md §4.9) and match. The js peer lives in ``tests/foreign/kad/``
(npm packages installed by ``npm ci``, once); the test is skipped only when
node/npm are missing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from strangers.testing import LOOPBACK, Strangers, chat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "foreign"))
from jspeer import JsKadPeer, Unavailable, install  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def js_installed():
    try:
        install()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def js_peer(js_installed):
    peer = JsKadPeer()
    try:
        yield peer
    finally:
        peer.stop()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _cached_servers() -> list[str]:
    path = Path(os.environ["STRANGERS_HOME"]) / "servers.json"
    if not path.exists():
        return []
    return [entry["peer"] for entry in json.loads(path.read_text())["servers"]]


def test_strangers_find_servers_through_a_js_libp2p_node_and_match(js_peer, procs):
    # a plain libp2p node: the public DHT's protocol, nothing of ours
    assert "/ipfs/kad/1.0.0" in js_peer.protocols
    assert not any(p.startswith("/strangers/") for p in js_peer.protocols)
    server = Strangers("serve", "--json", "--listen", LOOPBACK, "--no-mdns", "--bootstrap",
                       js_peer.addr, "-v")
    procs.append(server)
    server_id = server.wait_for("ready", timeout=30)["peer_id"]
    # the server announced the rendezvous key to the js node (its only DHT peer); js
    # stores the record and then resets the stream, so the count confirmed is not checked
    _wait(lambda: "announced on the rendezvous key" in server.stderr, 30,
          "the server's announcement")

    people = [chat(js_peer.addr, "-i", "interop") for _ in range(2)]
    procs.extend(people)
    matched = [person.wait_for("matched", timeout=60) for person in people]
    assert matched[0]["common_interests"] == ["interop"]
    assert matched[0]["safety_code"] == matched[1]["safety_code"]
    assert server_id in _cached_servers()  # found through the js node, and remembered
    for person in people:
        assert not [e for e in person.events if e["event"] == "warning"]
    people[0].send({"cmd": "send", "text": "hello across implementations"})
    assert people[1].wait_for("message")["text"] == "hello across implementations"


def test_no_strangers_server_behind_the_js_node_is_said(js_peer, procs):
    lonely = chat(js_peer.addr, "-i", "interop")
    procs.append(lonely)
    lonely.wait_for("ready", timeout=30)
    warning = lonely.wait_for("warning", timeout=30)
    assert "no strangers server found" in warning["message"]
    assert _cached_servers() == []
