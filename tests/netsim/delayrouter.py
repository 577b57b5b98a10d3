"""A "delay router": hosts in network namespaces whose TCP crosses the delaying proxy.

Topology (all namespaces created here, removed on exit)::

    host0 (10.201.0.2) --veth-- +
    host1 (10.201.1.2) --veth-- + router ns: ip_forward, iptables REDIRECT of
    host2 (10.201.2.2) --veth-- +   forwarded TCP to delayproxy.py (0.0.0.0:PORT)

Every host has its own /24 and the router as its default gateway; the router
REDIRECTs every TCP connection that arrives on a host link to the proxy, which
learns the original destination (``SO_ORIGINAL_DST``) and connects onward from
the router's own address. So between any two hosts a round trip takes
``2 * delay`` (one proxy hop), with the jitter and loss stalls of
:class:`~delayproxy.PathSettings`. Only TCP is delayed (the node speaks
nothing else here); the onward connection's source is the router, which
strangers does not rely on (it announces its listen addresses).

Use::

    with DelayRouter(PathSettings.for_rtt(0.3, loss=0.01), hosts=3) as net:
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

PROXY = Path(__file__).with_name("delayproxy.py")
SUBNET = "10.201"


def namespaces_unavailable() -> str | None:
    """Why this machine cannot build the topology (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool} (iproute2, iptables)"
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
    proxy_port: int = 0
    proxy_stderr: list[str] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)
    _proxy: subprocess.Popen[bytes] | None = None

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
        _run("ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for index in range(self.hosts_wanted):
            name = f"wan{self.tag}h{index}"
            self._netns(name)
            outside, inside = f"wr{self.tag}{index}", f"wh{self.tag}{index}"
            _run("ip", "link", "add", outside, "netns", self.router, "type", "veth",
                 "peer", "name", inside, "netns", name)
            gateway, ip = f"{SUBNET}.{index}.1", f"{SUBNET}.{index}.2"
            _run("ip", "-n", self.router, "addr", "add", f"{gateway}/24", "dev", outside)
            _run("ip", "-n", self.router, "link", "set", outside, "up")
            _run("ip", "-n", name, "addr", "add", f"{ip}/24", "dev", inside)
            _run("ip", "-n", name, "link", "set", inside, "up")
            _run("ip", "-n", name, "route", "add", "default", "via", gateway)
            self.hosts.append(NetHost(name, ip))
        self._start_proxy()
        _run("ip", "netns", "exec", self.router, "iptables", "-t", "nat", "-A", "PREROUTING",
             "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(self.proxy_port))

    def _start_proxy(self) -> None:
        settings = self.settings
        cmd = ["ip", "netns", "exec", self.router, sys.executable, str(PROXY),
               "--listen", "0.0.0.0", "--delay", repr(settings.delay),
               "--jitter", repr(settings.jitter), "--loss", repr(settings.loss),
               "--stall", repr(settings.stall)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        self._proxy = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proxy.stdout is not None and self._proxy.stderr is not None
        line = self._proxy.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"delay proxy did not start: {self._proxy.stderr.read().decode()}")
        self.proxy_port = int(line[1])
        stderr = self._proxy.stderr

        def drain() -> None:
            for raw in stderr:
                self.proxy_stderr.append(raw.decode("utf-8", "replace"))

        threading.Thread(target=drain, daemon=True).start()

    def proxy_statistics(self) -> str:
        """The proxy's counters, after :meth:`close` (it prints them when it stops)."""
        return "".join(line for line in self.proxy_stderr if line.startswith("stats"))

    def close(self) -> None:
        if self._proxy is not None and self._proxy.poll() is None:
            self._proxy.terminate()
            try:
                self._proxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proxy.kill()
                self._proxy.wait(timeout=5)
        for name in reversed(self._namespaces):  # veths go with their namespaces
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        self._namespaces.clear()
