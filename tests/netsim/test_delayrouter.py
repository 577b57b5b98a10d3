"""The delay router in network namespaces: host to host TCP takes the configured round trip.

Skips (with the reason) only where namespaces cannot be created.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from statistics import median

import pytest
from delayproxy import PathSettings
from delayrouter import DelayRouter, namespaces_unavailable

pytestmark = [pytest.mark.netns]

PROBE = str(Path(__file__).with_name("tcpprobe.py"))


@pytest.fixture(scope="module")
def namespaces():
    reason = namespaces_unavailable()
    if reason:
        pytest.skip(reason)


def _probe(net: DelayRouter, count: int = 5) -> dict:
    server_host, client_host = net.hosts[1], net.hosts[0]
    server = subprocess.Popen([*server_host.prefix, sys.executable, PROBE, "echo", server_host.ip],
                              stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        done = subprocess.run([*client_host.prefix, sys.executable, PROBE, "ping", server_host.ip,
                               str(port), str(count)], capture_output=True, timeout=60, check=True)
        return json.loads(done.stdout)
    finally:
        server.kill()
        server.wait()


def test_round_trips_between_hosts_take_the_configured_time(namespaces):
    rtt = 0.2
    with DelayRouter(PathSettings.for_rtt(rtt), hosts_wanted=2) as net:
        result = _probe(net)
        names = list(net._namespaces)
    assert rtt <= median(result["rtts"]) < rtt + 0.05
    # the first byte pays the emulated handshake too
    assert 2 * rtt <= result["first"] < 2 * rtt + 0.1
    # every namespace is gone afterwards
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)


def test_zero_delay_router_still_routes(namespaces):
    """The 0 ms baseline of the benchmark goes through the same proxy hop."""
    with DelayRouter(PathSettings(0.0), hosts_wanted=2) as net:
        result = _probe(net, count=3)
    assert median(result["rtts"]) < 0.02


def test_loss_stalls_show_as_late_round_trips(namespaces):
    rtt, stall = 0.05, 0.2
    settings = PathSettings.for_rtt(rtt, loss=0.3, stall=stall)
    with DelayRouter(settings, hosts_wanted=2, seed=3) as net:
        result = _probe(net, count=30)
    late = [sample for sample in result["rtts"] if sample >= rtt + stall]
    assert late, result["rtts"]
    assert min(result["rtts"]) >= rtt
