"""Canaries for ``strangers.node.libp2p.reachability`` (AutoNAT with a fresh dial-back).

The library's AutoNAT server dials back with ``host.connect``, which returns
at once over the connection the request came in on: an address where nobody
listens is judged reachable. The first test shows that bug on two real hosts
(loopback); the second that our server answers the truth.
"""

from __future__ import annotations

import socket

import trio
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID, AutoNATService
from libp2p.host.autonat.pb.autonat_pb2 import Message
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.reachability import (
    AUTONAT,
    OBSERVED_IP_MISMATCH,
    FreshDialAutoNAT,
    ask_reachability,
    fresh_dial,
    query,
    watch_observations,
)

from canary import changed, parameters_of, source_of

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


def _closed_port() -> int:
    """A loopback port where nobody listens (bound, then released)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def _ask(server_service_class) -> tuple[int, str]:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    server_service_class(server, serve=True)
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
        dead = Multiaddr(f"/ip4/127.0.0.1/tcp/{_closed_port()}")
        status, text, _addr = await query(client, server.get_id(), [dead])
        return status, text


async def test_library_autonat_judges_a_dead_address_reachable() -> None:
    """The bug FreshDialAutoNAT fixes: dial-back over the existing connection."""
    with trio.fail_after(20):
        status, _text = await _ask(AutoNATService)
    assert status == int(Message.OK), changed(
        "reachability.FreshDialAutoNAT",
        f"py-libp2p's AutoNAT now answers {status} for a dead address (its dial-back was fixed: "
        "FreshDialAutoNAT may no longer be needed)")
    assert "self.host.connect" in source_of(AutoNATService._try_dial), changed(
        "reachability.FreshDialAutoNAT", "AutoNATService._try_dial no longer dials with host.connect")


async def test_our_autonat_dials_back_on_a_fresh_connection() -> None:
    with trio.fail_after(20):
        status, _text = await _ask(FreshDialAutoNAT)
    assert status == int(Message.E_DIAL_ERROR)


async def test_fresh_dial_proves_the_peer_and_leaves_the_swarm_alone() -> None:
    """fresh_dial uses the swarm's transport manager and upgrader (Noise)."""
    assert "transport_manager" in source_of(type(build_host(fresh_identity()).get_network()).__init__)
    assert parameters_of(type(build_host(fresh_identity()).get_network().upgrader).upgrade_security)[:4] == [
        "self", "raw_conn", "is_initiator", "peer_id"], changed(
        "reachability.fresh_dial", "TransportUpgrader.upgrade_security takes other arguments")
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            addr = server.get_transport_addrs()[0]
            assert await fresh_dial(client, server.get_id(), addr) is True
            assert client.get_network().get_connections(server.get_id()) == []
            impostor = fresh_identity().peer_id
            try:
                proved = await fresh_dial(client, impostor, addr)
            except Exception:
                proved = False
            assert proved is False


async def test_a_server_that_sees_another_ip_counts_as_not_reachable() -> None:
    """Behind a NAT the server sees the router's IP: it refuses, with a text we read."""
    assert OBSERVED_IP_MISMATCH in source_of(AutoNATService._handle_dial), changed(
        "reachability.ask_reachability", "AutoNAT's refusal text for an IP mismatch changed")
    assert AUTONAT == AUTONAT_PROTOCOL_ID == "/libp2p/autonat/1.0.0"
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    FreshDialAutoNAT(server, serve=True)
    with trio.fail_after(20):
        async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
            await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
            elsewhere = Multiaddr("/ip4/192.168.77.2/tcp/4001")  # never dialled: refused first
            assert await ask_reachability(client, [server.get_id()], [elsewhere]) == (False, [])
            mine = client.get_transport_addrs()
            reachable, reached = await ask_reachability(client, [server.get_id()], mine)
            assert reachable is True and reached == mine[:1]


class _Spy:
    """Stands in for ObservedAddresses: records every (observer, observed) pair."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []
        self.seen = trio.Event()

    def record(self, observer: str, observed: str) -> bool:
        self.pairs.append((observer, observed))
        self.seen.set()
        return True


async def test_identify_still_hands_the_observed_address_to_the_manager_we_wrap() -> None:
    """watch_observations relies on identify calling record_observation(conn, addr, local)."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    spy, news = _Spy(), []
    watch_observations(client, spy, lambda: news.append(1))  # type: ignore[arg-type]
    assert "local_addrs" in parameters_of(type(client._observed_addr_manager).record_observation), changed(
        "reachability.watch_observations", "ObservedAddrManager.record_observation's parameters changed")
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
        with trio.move_on_after(10):
            await spy.seen.wait()
    assert spy.pairs and spy.pairs[0] == ("127.0.0.1", "127.0.0.1"), changed(
        "reachability.watch_observations",
        f"identify no longer reports observed addresses through the manager ({spy.pairs})")
    assert news
