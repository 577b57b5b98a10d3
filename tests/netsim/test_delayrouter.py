"""The delay router in network namespaces: every packet between hosts takes the configured delay.

TCP and UDP alike, with the hosts' own source addresses (no proxy, no NAT).
Skips (with the reason) only where namespaces or the TUN driver are missing.
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


def _probe(net: DelayRouter, count: int = 5, *, udp: bool = False) -> tuple[dict, list[str]]:
    """Ping host 1 from host 0: the prober's figures, and the peer addresses the server saw (TCP)."""
    server_host, client_host = net.hosts[1], net.hosts[0]
    server = subprocess.Popen([*server_host.prefix, sys.executable, PROBE,
                               "udpecho" if udp else "echo", server_host.ip],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        done = subprocess.run([*client_host.prefix, sys.executable, PROBE,
                               "udpping" if udp else "ping", server_host.ip, str(port), str(count)],
                              capture_output=True, timeout=120, check=True)
        peers = [] if udp else [server.stdout.readline().split()[1]]
        return json.loads(done.stdout), peers
    finally:
        server.kill()
        server.wait()


def test_tcp_round_trips_take_the_configured_time_from_the_hosts_own_address(namespaces):
    rtt = 0.2
    with DelayRouter(PathSettings.for_rtt(rtt), hosts_wanted=2) as net:
        result, peers = _probe(net)
        client_ip = net.hosts[0].ip
        names = list(net._namespaces)
    assert "dropped=0" in net.statistics()
    assert rtt <= median(result["rtts"]) < rtt + 0.05
    # TCP's own handshake costs its round trip: connect + first byte = 2 RTT
    assert rtt <= result["connect"] < rtt + 0.05
    assert 2 * rtt <= result["first"] < 2 * rtt + 0.1
    assert peers == [client_ip]  # the packet kept its source: the server sees the host itself
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)  # every namespace is gone afterwards


def test_udp_is_delayed_too_and_keeps_its_source(namespaces):
    rtt = 0.1
    with DelayRouter(PathSettings.for_rtt(rtt), hosts_wanted=2) as net:
        result, _ = _probe(net, count=5, udp=True)
        client_ip = net.hosts[0].ip
    assert result["lost"] == 0
    assert rtt <= median(result["rtts"]) < rtt + 0.05
    assert result["seen_as"] == [client_ip]


def test_zero_delay_router_still_routes(namespaces):
    """The 0 ms baseline of the benchmark crosses the same TUN."""
    with DelayRouter(PathSettings(0.0), hosts_wanted=2) as net:
        result, _ = _probe(net, count=3)
        net.close()
        assert "packets=0" not in net.statistics()
    assert median(result["rtts"]) < 0.02


def test_lost_packets_are_retransmitted_by_tcp(namespaces):
    rtt = 0.05
    with DelayRouter(PathSettings.for_rtt(rtt, loss=0.2), hosts_wanted=2, seed=3) as net:
        result, _ = _probe(net, count=20)
        net.close()
        stats = net.statistics()
    late = [sample for sample in result["rtts"] if sample >= rtt + 0.15]  # a retransmission timeout
    assert late, (result["rtts"], stats)
    assert min(result["rtts"]) >= rtt
    assert "dropped=0" not in stats
