"""End to end in a network namespace of our own: mDNS and no internet.

These tests send mDNS multicast and dial the public bootstrap list, so they
run only inside a fresh namespace whose only interface is ``lo`` (nothing
leaves the namespace). They need root and iproute2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from strangers.testing import Strangers

pytestmark = [pytest.mark.e2e, pytest.mark.netns]


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create a network namespace")
    name = f"strangers-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr.decode().strip()}")
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "link", "set", "lo", "multicast", "on"],
                    ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, capture_output=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def test_strangers_on_one_machine_meet_without_bootstrap(netns, procs):
    people = [Strangers("chat", "--json", "--no-bootstrap", "-i", "cinema", prefix=netns)
              for _ in range(2)]
    procs.extend(people)
    first = people[0].wait_for("matched", timeout=30)
    second = people[1].wait_for("matched", timeout=30)
    assert first["common_interests"] == ["cinema"]
    assert first["safety_code"] == second["safety_code"]
    people[0].send({"cmd": "send", "text": "found you on the LAN"})
    assert people[1].wait_for("message")["text"] == "found you on the LAN"


def test_default_bootstrap_unreachable_is_said_and_local_chat_still_works(netns, procs):
    """The README's main command with no internet: a clear warning, then a chat."""
    people = [Strangers("chat", "--json", "-i", "jazz", prefix=netns) for _ in range(2)]
    procs.extend(people)
    warning = people[0].wait_for("warning", timeout=30)
    assert "default public bootstrap peers" in warning["message"]
    people[0].wait_for("matched", timeout=30)
    people[1].wait_for("matched", timeout=30)


def test_no_mdns_and_no_bootstrap_says_nobody_can_be_found(netns, procs):
    lonely = Strangers("chat", "--json", "--no-mdns", "-i", "jazz", prefix=netns)
    procs.append(lonely)
    warning = lonely.wait_for("warning", timeout=30)
    assert "nobody can be found" in warning["message"]
