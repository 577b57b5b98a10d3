"""Shared pieces of the fault tests: a victim on a small network, the survival check, namespaces.

A *lab* is one ``strangers serve`` node and one victim ``strangers chat --json --no-mdns -i X``
bootstrapped from it, on 127.0.0.1 (or on an address given, inside a namespace). After an attack
:func:`check_survives` asks what issue 7 asks: the victim still runs, answers ``status``, and
then matches a new honest stranger and exchanges a message with it both ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from strangers.testing import LOOPBACK, Strangers

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # the hostile peer lives in tests/hostile, beside tests/e2e
    sys.path.insert(0, str(TESTS))

START_WAIT = 30.0
MATCH_WAIT = 60.0
"""A new honest stranger must be matched with the victim within this (search rounds, refusals)."""
MESSAGE_WAIT = 15.0


def describe(stranger: Strangers) -> str:
    return (f"exit code {stranger.proc.poll()}, events {stranger.events[-8:]}, "
            f"stderr tail: {stranger.stderr[-1500:]}")


def serve_node(procs: list, listen: str = LOOPBACK, prefix: list[str] | None = None
               ) -> tuple[Strangers, str]:
    node = Strangers("serve", "--json", "--listen", listen, "--no-bootstrap", "--no-mdns",
                     prefix=prefix)
    procs.append(node)
    return node, node.wait_for("ready", timeout=START_WAIT)["addrs"][0]


def chat_node(procs: list, bootstrap: str, interest: str, listen: str = LOOPBACK,
              prefix: list[str] | None = None) -> tuple[Strangers, dict]:
    """A ``strangers chat --json`` node that is searching; (process, its ``ready`` event)."""
    node = Strangers("chat", "--json", "--listen", listen, "--no-mdns", "--bootstrap", bootstrap,
                     "-i", interest, prefix=prefix)
    procs.append(node)
    ready = node.wait_for("ready", timeout=START_WAIT)
    node.wait_for("searching", timeout=START_WAIT)
    return node, ready


@dataclass
class Lab:
    procs: list
    serve: Strangers
    bootstrap: str
    victim: Strangers
    victim_id: str
    victim_addr: str
    interest: str
    listen: str = LOOPBACK
    prefix: list[str] | None = None


def start_lab(procs: list, interest: str, listen: str = LOOPBACK,
              prefix: list[str] | None = None) -> Lab:
    serve, bootstrap = serve_node(procs, listen, prefix)
    victim, ready = chat_node(procs, bootstrap, interest, listen, prefix)
    return Lab(procs, serve, bootstrap, victim, ready["peer_id"], ready["addrs"][0], interest,
               listen, prefix)


def matched_with(peer_id: str):
    return lambda event: event.get("event") == "matched" and event.get("peer_id") == peer_id


def check_alive_and_status(victim: Strangers) -> dict:
    assert victim.proc.poll() is None, f"the victim died: {describe(victim)}"
    victim.send({"cmd": "status"})
    status = victim.wait_for("status", timeout=10)
    assert victim.proc.poll() is None, f"the victim died: {describe(victim)}"
    return status


def check_matches_new_stranger(lab: Lab) -> Strangers:
    """A new honest stranger: matched with the victim, one message each way."""
    honest, ready = chat_node(lab.procs, lab.bootstrap, lab.interest, lab.listen, lab.prefix)
    started = time.monotonic()
    mine = honest.wait_for(matched_with(lab.victim_id), timeout=MATCH_WAIT)
    theirs = lab.victim.wait_for(matched_with(ready["peer_id"]), timeout=MATCH_WAIT)
    print(f"victim matched a new honest stranger {time.monotonic() - started:.1f} s after "
          "that one started")
    assert mine["safety_code"] == theirs["safety_code"]
    hello, answer = "hi, honest stranger here", "glad you are not the last one"
    honest.send({"cmd": "send", "text": hello})
    assert lab.victim.wait_for("message", timeout=MESSAGE_WAIT)["text"] == hello
    lab.victim.send({"cmd": "send", "text": answer})
    assert honest.wait_for("message", timeout=MESSAGE_WAIT)["text"] == answer
    return honest


def check_survives(lab: Lab) -> None:
    check_alive_and_status(lab.victim)
    check_matches_new_stranger(lab)
    assert lab.victim.proc.poll() is None, f"the victim died: {describe(lab.victim)}"


# -- network namespaces ------------------------------------------------------------------------

def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


@dataclass
class Link:
    """Two namespaces joined by a veth pair, on 10.x addresses that never leave them."""

    left: str
    right: str
    left_dev: str
    right_dev: str
    left_addr: str
    right_addr: str

    def prefix(self, netns: str) -> list[str]:
        return ["ip", "netns", "exec", netns]

    def cut(self) -> None:
        """Take the right end of the pair down: the left end loses carrier, packets vanish."""
        _ip("link", "set", self.right_dev, "down", netns=self.right)


@contextmanager
def linked_namespaces() -> Iterator[Link]:
    """Create the pair (skipping the test if namespaces are not permitted); delete it after."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = uuid.uuid4().hex[:6]
    left, right = f"strangers-l-{tag}", f"strangers-r-{tag}"
    octet = int(tag[:2], 16)
    link = Link(left, right, f"vl{tag}", f"vr{tag}", f"10.213.{octet}.1", f"10.213.{octet}.2")
    created: list[str] = []
    try:
        for name in (left, right):
            try:
                subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            except subprocess.CalledProcessError as exc:
                pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
            created.append(name)
            _ip("link", "set", "lo", "up", netns=name)
        _ip("link", "add", link.left_dev, "netns", left, "type", "veth",
            "peer", "name", link.right_dev, "netns", right)
        for name, dev, addr in ((left, link.left_dev, link.left_addr),
                                (right, link.right_dev, link.right_addr)):
            _ip("addr", "add", f"{addr}/24", "dev", dev, netns=name)
            _ip("link", "set", dev, "up", netns=name)
        yield link
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
