"""Network topologies of our own, built from network namespaces (for e2e tests).

A :class:`Lab` creates namespaces, switches (a Linux bridge in a namespace of
its own), hosts wired to switches with veth pairs, and home routers: a
namespace with a WAN and a LAN side that masquerades the LAN behind its WAN
address and silently drops every unsolicited inbound connection (iptables:
inbound NEW dropped, no reset), like a home router. Everything is removed
on :meth:`Lab.close` (the lab is a context manager). Addresses are private
(10.x / 192.168.x) and exist only inside the lab's namespaces; nothing is
routed to or from the machine's own namespace.

    with Lab() as lab:
        wan = lab.switch("wan", "10.77.0.0/24")
        public = lab.host("pub", wan, "10.77.0.2")
        home = lab.nat("home1", wan, "10.77.0.11", "192.168.1.0/24")
        laptop = lab.host("laptop1", home.lan, "192.168.1.2", gateway=home.lan_ip)
        proc = Strangers("serve", ..., prefix=public.prefix)

Needs root and iproute2 + iptables; :func:`require_netns` skips a test with a
clear message where namespaces cannot be created.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


class LabUnavailable(RuntimeError):
    """Namespaces (or the tools) are not available here."""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done


def require_netns() -> None:
    """Raise :class:`LabUnavailable` unless we can build namespaces with NAT."""
    if os.geteuid() != 0:
        raise LabUnavailable("needs root to create network namespaces")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            raise LabUnavailable(f"needs {tool} (iproute2 / iptables) to build the topology")
    probe = f"snl-probe-{uuid.uuid4().hex[:6]}"
    done = _run("ip", "netns", "add", probe, check=False)
    if done.returncode != 0:
        raise LabUnavailable(f"cannot create a network namespace: {done.stderr.strip()}")
    try:
        rule = _run("ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L", check=False)
        if rule.returncode != 0:
            raise LabUnavailable(f"iptables NAT does not work in a namespace: {rule.stderr.strip()}")
    finally:
        _run("ip", "netns", "delete", probe, check=False)


@dataclass
class Switch:
    """A bridge in a namespace of its own; hosts plug into it."""

    name: str
    ns: str
    network: ipaddress.IPv4Network
    ports: int = 0


@dataclass
class Host:
    """A namespace with one or more interfaces."""

    name: str
    ns: str
    ips: list[str] = field(default_factory=list)

    @property
    def ip(self) -> str:
        return self.ips[0]

    @property
    def prefix(self) -> list[str]:
        """Put before a command to run it in this host (``Strangers(prefix=...)``)."""
        return ["ip", "netns", "exec", self.ns]

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(*self.prefix, *cmd, check=check)


@dataclass
class Router(Host):
    """A home router: masquerades ``lan`` behind its WAN address, drops unsolicited inbound."""

    lan: Switch | None = None
    lan_ip: str = ""
    wan_ip: str = ""


class Capture:
    """``tcpdump -i any`` in a host, written to a pcap file (read it with :meth:`data`)."""

    def __init__(self, host: Host, path: Path, *, interface: str = "any") -> None:
        if shutil.which("tcpdump") is None:
            raise LabUnavailable("needs tcpdump to capture what a host forwards")
        self.path = path
        self.report = ""
        """What tcpdump said when it stopped (packets captured, dropped)."""
        self.proc = subprocess.Popen(
            [*host.prefix, "tcpdump", "-i", interface, "-U", "-s", "0", "-w", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size > 0):
            time.sleep(0.05)  # tcpdump writes the pcap header once it listens

    def stop(self) -> bytes:
        if self.proc.poll() is None:
            # tcpdump drops what it has not written yet when it is told to stop
            # (a busy machine lags): wait until the file stops growing.
            deadline, size, still = time.monotonic() + 10, -1, 0
            while time.monotonic() < deadline and still < 3:
                time.sleep(0.2)
                now = self.path.stat().st_size if self.path.exists() else 0
                still, size = (still + 1, size) if now == size else (0, now)
            self.proc.send_signal(signal.SIGINT)
            try:
                _out, err = self.proc.communicate(timeout=5)
                self.report = err.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.data()

    def data(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b""

    def packets_between(self, host: Host, a: str, b: str) -> int:
        """How many captured packets went between IPs ``a`` and ``b`` (reads with tcpdump)."""
        done = _run("tcpdump", "-nn", "-r", str(self.path), f"host {a} and host {b}", check=False)
        return len([line for line in done.stdout.splitlines() if line.strip()])


class Lab:
    """A set of namespaces removed together (use as a context manager)."""

    def __init__(self) -> None:
        require_netns()
        self.tag = uuid.uuid4().hex[:5]
        self.namespaces: list[str] = []
        self._links = 0
        self.captures: list[Capture] = []

    # -- building ---------------------------------------------------------------

    def _namespace(self, name: str) -> str:
        ns = f"snl-{self.tag}-{name}"
        _run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        return ns

    def _veth(self, ns_a: str, ns_b: str) -> tuple[str, str]:
        self._links += 1
        a, b = f"v{self.tag}{self._links}a", f"v{self.tag}{self._links}b"
        _run("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
        return a, b

    def switch(self, name: str, network: str) -> Switch:
        ns = self._namespace(f"sw-{name}")
        _run("ip", "netns", "exec", ns, "ip", "link", "add", "br0", "type", "bridge")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "br0", "up")
        return Switch(name, ns, ipaddress.ip_network(network))

    def _plug(self, switch: Switch, ns: str, ip: str) -> str:
        inside, port = self._veth(ns, switch.ns)
        switch.ports += 1
        _run("ip", "netns", "exec", switch.ns, "ip", "link", "set", port, "master", "br0")
        _run("ip", "netns", "exec", switch.ns, "ip", "link", "set", port, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/{switch.network.prefixlen}",
             "dev", inside)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        return inside

    def host(self, name: str, switch: Switch, ip: str, *, gateway: str | None = None) -> Host:
        """A host on ``switch`` at ``ip``; ``gateway``: its default route (a router's LAN IP)."""
        ns = self._namespace(name)
        self._plug(switch, ns, ip)
        if gateway:
            _run("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", gateway)
        return Host(name, ns, [ip])

    def nat(self, name: str, wan: Switch, wan_ip: str, lan_network: str) -> Router:
        """A home router on ``wan`` at ``wan_ip`` with a new LAN switch behind it.

        The LAN gets masqueraded behind ``wan_ip``; connections from the WAN
        are accepted only when they belong to one the LAN opened, and every
        other inbound SYN (to the LAN or to the router itself) is dropped
        without an answer.
        """
        ns = self._namespace(name)
        lan = self.switch(f"{name}-lan", lan_network)
        lan_ip = str(next(lan.network.hosts()))
        wan_if = self._plug(wan, ns, wan_ip)
        lan_if = self._plug(lan, ns, lan_ip)
        rules = [
            ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
            ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", lan_network, "-o", wan_if,
             "-j", "MASQUERADE"],
            ["iptables", "-P", "FORWARD", "DROP"],
            ["iptables", "-A", "FORWARD", "-i", lan_if, "-o", wan_if, "-j", "ACCEPT"],
            ["iptables", "-A", "FORWARD", "-i", wan_if, "-o", lan_if, "-m", "conntrack",
             "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["iptables", "-A", "INPUT", "-i", wan_if, "-m", "conntrack", "--ctstate",
             "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["iptables", "-A", "INPUT", "-i", wan_if, "-j", "DROP"],
        ]
        for rule in rules:
            _run("ip", "netns", "exec", ns, *rule)
        return Router(name, ns, [wan_ip, lan_ip], lan=lan, lan_ip=lan_ip, wan_ip=wan_ip)

    def capture(self, host: Host, path: Path, *, interface: str = "any") -> Capture:
        capture = Capture(host, path, interface=interface)
        self.captures.append(capture)
        return capture

    def switch_host(self, switch: Switch) -> Host:
        """The switch's own namespace as a host (to capture on its bridge, ``br0``)."""
        return Host(f"sw-{switch.name}", switch.ns, [])

    # -- cleaning up ----------------------------------------------------------------

    def close(self) -> None:
        for capture in self.captures:
            capture.stop()
        for ns in reversed(self.namespaces):
            # Processes still in the namespace keep it alive: end them first.
            pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run("ip", "netns", "delete", ns, check=False)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
