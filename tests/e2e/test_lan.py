"""End to end on real topologies built with network namespaces: one LAN, two routed subnets.

* two hosts on one segment (two namespaces on a bridge) with no bootstrap at
  all find each other through mDNS and chat;
* two reachable strangers on different subnets (a router namespace with
  ``ip_forward``, no NAT) and a ``serve`` node match through the DHT. Before
  the address fixes they never did: the serve node handed out their
  identify addresses ``/ip4/0.0.0.0/...``, the dial failed, and the swarm's
  negative cache refused the good address afterwards.

Every address and every packet stays inside namespaces these tests create
(10.8x.0.0/16) and remove. They need root and iproute2; they skip with the
reason when namespaces cannot be made. Loopback-only tests do not count here:
each host has only ``lo`` and its own veth.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from strangers.testing import Strangers

pytestmark = [pytest.mark.e2e, pytest.mark.netns]


def _run(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True)


class Topology:
    """Namespaces, veth pairs and bridges of one test; :meth:`close` removes them all."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.links = 0

    def namespace(self, role: str) -> str:
        name = f"st-{role}-{self.tag}"
        _run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.exec(name, "ip", "link", "set", "lo", "up")
        return name

    def exec(self, ns: str, *cmd: str) -> None:
        _run("ip", "netns", "exec", ns, *cmd)

    def prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def link(self, ns: str, peer_ns: str, address: str, *, bridge: str | None = None,
             peer_address: str | None = None) -> str:
        """A veth from ``ns`` (given ``address``) to ``peer_ns`` (onto ``bridge``); its name in ``ns``."""
        self.links += 1
        inside, outside = f"v{self.tag}a{self.links}", f"v{self.tag}b{self.links}"
        _run("ip", "link", "add", inside, "netns", ns, "type", "veth", "peer", "name", outside, "netns", peer_ns)
        self.exec(ns, "ip", "addr", "add", address, "dev", inside)
        self.exec(ns, "ip", "link", "set", inside, "up")
        self.exec(ns, "ip", "link", "set", inside, "multicast", "on")
        if bridge is not None:
            self.exec(peer_ns, "ip", "link", "set", outside, "master", bridge)
        if peer_address is not None:
            self.exec(peer_ns, "ip", "addr", "add", peer_address, "dev", outside)
        self.exec(peer_ns, "ip", "link", "set", outside, "up")
        return inside

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


@contextmanager
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    net = Topology()
    try:
        try:
            yield net
        except subprocess.CalledProcessError as exc:
            if not net.namespaces or "Operation not permitted" in exc.stderr.decode():
                pytest.skip(f"cannot build network namespaces: {exc.stderr.decode().strip()}")
            raise
    finally:
        net.close()


def _addresses(event: dict) -> list[str]:
    return [addr.split("/p2p/")[0] for addr in event["addrs"]]


def test_two_hosts_on_one_segment_meet_through_mdns_with_no_bootstrap(procs):
    with topology() as net:
        switch = net.namespace("sw")
        net.exec(switch, "ip", "link", "add", "br0", "type", "bridge")
        net.exec(switch, "ip", "link", "set", "br0", "up")
        hosts = []
        for number in (1, 2):
            host = net.namespace(f"h{number}")
            device = net.link(host, switch, f"10.87.0.{number}/24", bridge="br0")
            net.exec(host, "ip", "route", "add", "224.0.0.0/4", "dev", device)
            hosts.append(host)
        people = [Strangers("chat", "--json", "--no-bootstrap", "-i", "lan party", prefix=net.prefix(host))
                  for host in hosts]
        procs.extend(people)
        for number, person in enumerate(people, start=1):
            ready = person.wait_for("ready", timeout=30)
            addrs = _addresses(ready)
            assert not any("/0.0.0.0/" in a for a in addrs), addrs
            assert any(a.startswith(f"/ip4/10.87.0.{number}/tcp/") for a in addrs), addrs
        first = people[0].wait_for("matched", timeout=40)
        second = people[1].wait_for("matched", timeout=40)
        assert first["common_interests"] == ["lan party"]
        assert first["safety_code"] == second["safety_code"]
        people[0].send({"cmd": "send", "text": "across the bridge"})
        assert people[1].wait_for("message", timeout=15)["text"] == "across the bridge"
        people[1].send({"cmd": "send", "text": "and back"})
        assert people[0].wait_for("message", timeout=15)["text"] == "and back"


def test_two_strangers_on_routed_subnets_match_through_a_serve_node(procs):
    with topology() as net:
        router = net.namespace("r")
        net.exec(router, "sysctl", "-w", "net.ipv4.ip_forward=1")
        left, right = net.namespace("a"), net.namespace("b")
        net.link(left, router, "10.88.1.2/24", peer_address="10.88.1.1/24")
        net.link(right, router, "10.88.2.2/24", peer_address="10.88.2.1/24")
        net.exec(left, "ip", "route", "add", "default", "via", "10.88.1.1")
        net.exec(right, "ip", "route", "add", "default", "via", "10.88.2.1")
        # default settings (listen on 0.0.0.0) except mDNS: only the DHT may bring them together
        server = Strangers("serve", "--json", "--no-bootstrap", "--no-mdns", prefix=net.prefix(left))
        procs.append(server)
        ready = server.wait_for("ready", timeout=30)
        seed = next(addr for addr in ready["addrs"] if addr.startswith("/ip4/10.88.1.2/"))
        waiting = Strangers("chat", "--json", "--no-mdns", "--bootstrap", seed, "-i", "routed",
                            "--interests-only", prefix=net.prefix(left))
        procs.append(waiting)
        waiting.wait_for("advertised", timeout=30)
        joiner = Strangers("chat", "--json", "--no-mdns", "--bootstrap", seed, "-i", "routed",
                           "--interests-only", prefix=net.prefix(right))
        procs.append(joiner)
        joined = joiner.wait_for("ready", timeout=30)
        assert _addresses(joined) == [a for a in _addresses(joined) if "/0.0.0.0/" not in a]
        matched = joiner.wait_for("matched", timeout=40)
        assert waiting.wait_for("matched", timeout=20)["safety_code"] == matched["safety_code"]
        joiner.send({"cmd": "send", "text": "hello from the other subnet"})
        assert waiting.wait_for("message", timeout=15)["text"] == "hello from the other subnet"
