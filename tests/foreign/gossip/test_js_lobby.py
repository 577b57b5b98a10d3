"""A js-libp2p GossipSub node (npm @libp2p/gossipsub, libp2p 3) talks in a strangers lobby.

It is written from docs/protocol.md §10 only (topic name, JSON payload,
strict signing); the strangers side is the real ``strangers lobby`` executable.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from strangers.testing import LOOPBACK, Strangers, serve

pytestmark = pytest.mark.e2e

TOPIC = "strangers/v1/lobby/general/chess"


class JsPeer:
    def __init__(self, script: Path, topic: str) -> None:
        self.proc = subprocess.Popen(["node", str(script), topic], cwd=script.parent,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.events: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self.events.put(json.loads(raw))
            except ValueError:
                pass

    def send(self, obj: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):
                return event
        stderr = self.proc.stderr.read1(4000) if self.proc.poll() is not None else b""  # type: ignore[union-attr]
        raise AssertionError(f"js peer: timed out; saw {self.seen}; {stderr!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_a_js_libp2p_node_and_strangers_nodes_talk_in_a_lobby(procs, js_lobby_peer):
    server, addr = serve()
    procs.append(server)
    members = [Strangers("lobby", "chess", "--json", "--listen", LOOPBACK, "--no-mdns",
                         "--bootstrap", addr) for _ in range(2)]
    procs.extend(members)
    for member in members:
        member.wait_for("joined", timeout=30)
    js = JsPeer(js_lobby_peer, TOPIC)
    try:
        ready = js.wait_for(lambda e: e["event"] == "ready")
        ids = []
        for member in members:
            mine = next(e for e in member.events if e["event"] == "ready")
            ids.append(mine["peer_id"])
            js.send({"cmd": "dial", "addr": mine["addrs"][0]})
        subscribed = set()
        js.wait_for(lambda e: e["event"] == "subscribed" and subscribed.add(e["peer_id"]) is None
                    and subscribed >= set(ids))
        for member in members:
            member.wait_for(lambda e: e["event"] == "members" and e["count"] >= 3, timeout=30)
        js.send({"cmd": "publish", "text": "hello from js-libp2p"})
        assert js.wait_for(lambda e: e["event"] == "published")["recipients"] >= 1
        for member in members:
            got = member.wait_for("lobby_message", timeout=20)
            assert (got["from"], got["text"]) == (ready["peer_id"], "hello from js-libp2p")
        members[0].send({"cmd": "send", "text": "hello from py-libp2p"})
        heard = js.wait_for(lambda e: e["event"] == "message")
        assert (heard["from"], heard["text"]) == (ids[0], "hello from py-libp2p")
        assert members[1].wait_for("lobby_message", timeout=20)["text"] == "hello from py-libp2p"
    finally:
        js.stop()
