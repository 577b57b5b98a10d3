"""mDNS and the routing table (issue 9: only DHT servers enter routing tables).

Three hosts on one switch in namespaces of their own (tests/netlab.py), no
bootstrap: two DHT servers and one client, each a real py-libp2p host with
our DHT and our mDNS discovery (tests/e2e/mdns_table_peer.py). Each server
must list the other and never the client, even after identify has told it
the client does not serve /strangers/kad/1.0.0; the client lists both servers.
Before the fix mDNS listed every neighbour at once, clients included.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from strangers.node.libp2p.mdns import WATCH_INTERVAL

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

PEER = Path(__file__).with_name("mdns_table_peer.py")


class Peer:
    """A mdns_table_peer.py process; :attr:`last` is its newest snapshot."""

    def __init__(self, prefix: list[str], ip: str, mode: str) -> None:
        self.proc = subprocess.Popen([*prefix, sys.executable, str(PEER), ip, mode],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.id = ""
        self.last: dict = {"table": [], "ever": [], "identified": {}}

    def wait_ready(self) -> None:
        self.id = self._next(timeout=30)["id"]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _next(self, timeout: float) -> dict:
        return self.lines.get(timeout=timeout)

    def refresh(self) -> dict:
        while True:
            try:
                self.last = self.lines.get_nowait()
            except queue.Empty:
                return self.last

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _multicast_route(host) -> None:
    device = host.run("ip", "-o", "-4", "addr", "show").stdout
    name = next(line.split()[1] for line in device.splitlines() if f" {host.ip}/" in line)
    host.run("ip", "route", "add", "224.0.0.0/4", "dev", name)


def test_mdns_lists_servers_and_never_a_client(lab):
    switch = lab.switch("lan", "10.89.0.0/24")
    hosts = [lab.host(f"m{n}", switch, f"10.89.0.{n}") for n in (2, 3, 4)]
    for host in hosts:
        _multicast_route(host)
    peers: list[Peer] = []
    try:
        for host, mode in zip(hosts, ("server", "server", "client"), strict=True):
            peers.append(Peer(host.prefix, host.ip, mode))
        for peer in peers:  # started together, as neighbours on a LAN
            peer.wait_ready()
        first, second, client = peers

        def settled() -> bool:
            a, b, c = (peer.refresh() for peer in peers)
            return (second.id in a["table"] and first.id in b["table"]
                    and {first.id, second.id} <= set(c["table"])
                    and a["identified"].get(client.id) is False
                    and b["identified"].get(client.id) is False)

        deadline = time.monotonic() + 60  # a hang guard: ~5 s on an idle machine
        while not settled():
            assert time.monotonic() < deadline, [peer.last for peer in peers]
            time.sleep(0.2)
        time.sleep(3 * WATCH_INTERVAL)  # the watch looked at the client again, more than once
        for server in (first, second):
            seen = server.refresh()
            assert client.id not in seen["ever"] and client.id not in seen["table"], seen
        assert client.id not in client.refresh()["table"]
    finally:
        for peer in peers:
            peer.stop()
