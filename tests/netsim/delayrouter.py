"""A "delay router": hosts in network namespaces whose packets cross a delaying TUN device.

Topology (all namespaces created here, removed on exit)::

    host0 (10.201.0.2) --veth-- +
    host1 (10.201.1.2) --veth-- + router ns: ip_forward; policy routing sends every
    host2 (10.201.2.2) --veth-- +   packet from a host link into TUN ``dly0``, where
                                    tundelay.py holds it, then writes it back

Every host has its own /24 and the router as its default gateway. The router
sends every packet that arrives on a host link into a TUN device (``ip rule
iif HOSTLINK lookup 100``, table 100: ``default dev dly0``); ``tundelay.py``
holds each packet for the one-way delay (with the jitter and loss of
:class:`~delayproxy.PathSettings`) and writes it back into the device, from
where the main table forwards it to the destination's link. So between any
two hosts a round trip takes ``2 * delay``, for TCP, UDP and ICMP alike, and
every packet keeps its addresses: a host sees the others' own addresses
(nobody looks NATed, AutoNAT and observed addresses work as on a routed
network). Loss is real packet loss (TCP retransmits); ``PathSettings.stall``
and ``handshake`` belong to the userspace proxy (``delayproxy.py``, still used
in-process by the round-trip counters) and mean nothing here: TCP's own
handshake costs its real round trip.

Use::

    with DelayRouter(PathSettings.for_rtt(0.3, loss=0.01), hosts_wanted=3) as net:
        net.hosts[0].prefix  # ["ip", "netns", "exec", name]: run a command there
        net.hosts[0].ip
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from delayproxy import PathSettings

DELAYER = Path(__file__).with_name("tundelay.py")
SUBNET = "10.201"
TUN = "dly0"
TABLE = "100"


def namespaces_unavailable() -> str | None:
    """Why this machine cannot build the topology (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs ip (iproute2)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (the TUN driver) for the packet delay"
    probe = f"wanprobe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.decode().strip()}")


@dataclass(frozen=True)
class NetHost:
    name: str
    ip: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]


@dataclass
class DelayRouter:
    settings: PathSettings
    hosts_wanted: int = 2
    seed: int | None = None
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: list[NetHost] = field(default_factory=list)
    delayer_stderr: list[str] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)
    _delayer: subprocess.Popen[bytes] | None = None
    _drain: threading.Thread | None = None

    @property
    def router(self) -> str:
        return f"wan{self.tag}r"

    def __enter__(self) -> DelayRouter:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _netns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._namespaces.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._netns(self.router)
        in_router = ("ip", "netns", "exec", self.router)
        # forward, and accept packets back from the TUN whose source lives on another link
        for setting in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0"):
            _run(*in_router, "sysctl", "-qw", setting)
        self._start_delayer()
        _run("ip", "-n", self.router, "link", "set", TUN, "up")
        _run(*in_router, "sysctl", "-qw", f"net.ipv4.conf.{TUN}.rp_filter=0")
        _run("ip", "-n", self.router, "route", "add", "default", "dev", TUN, "table", TABLE)
        for index in range(self.hosts_wanted):
            name = f"wan{self.tag}h{index}"
            self._netns(name)
            outside, inside = f"wr{self.tag}{index}", f"wh{self.tag}{index}"
            _run("ip", "link", "add", outside, "netns", self.router, "type", "veth",
                 "peer", "name", inside, "netns", name)
            gateway, ip = f"{SUBNET}.{index}.1", f"{SUBNET}.{index}.2"
            _run("ip", "-n", self.router, "addr", "add", f"{gateway}/24", "dev", outside)
            _run("ip", "-n", self.router, "link", "set", outside, "up")
            _run("ip", "-n", self.router, "rule", "add", "iif", outside, "lookup", TABLE)
            _run("ip", "-n", name, "addr", "add", f"{ip}/24", "dev", inside)
            _run("ip", "-n", name, "link", "set", inside, "up")
            _run("ip", "-n", name, "route", "add", "default", "via", gateway)
            self.hosts.append(NetHost(name, ip))

    def _start_delayer(self) -> None:
        settings = self.settings
        cmd = ["ip", "netns", "exec", self.router, sys.executable, str(DELAYER),
               "--name", TUN, "--delay", repr(settings.delay),
               "--jitter", repr(settings.jitter), "--loss", repr(settings.loss)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        self._delayer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._delayer.stdout is not None and self._delayer.stderr is not None
        line = self._delayer.stdout.readline().decode().split()
        if line != ["ready", TUN]:
            raise RuntimeError(f"tundelay.py did not start: {self._delayer.stderr.read().decode()}")
        stderr = self._delayer.stderr

        def drain() -> None:
            for raw in stderr:
                self.delayer_stderr.append(raw.decode("utf-8", "replace"))

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()

    def statistics(self) -> str:
        """The delayer's counters, after :meth:`close` (it prints them when it stops)."""
        return "".join(line for line in self.delayer_stderr if line.startswith("stats"))

    def close(self) -> None:
        if self._delayer is not None and self._delayer.poll() is None:
            self._delayer.terminate()
            try:
                self._delayer.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._delayer.kill()
                self._delayer.wait(timeout=5)
        if self._drain is not None:
            self._drain.join(timeout=5)
        for name in reversed(self._namespaces):  # veths go with their namespaces
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        self._namespaces.clear()
