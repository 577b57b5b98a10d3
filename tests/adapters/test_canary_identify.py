"""Canaries for ``strangers.node.libp2p.identifydefer``: identify on a new connection, later.

py-libp2p runs identify from both ends the moment a connection is up, through
``BasicHost._schedule_identify(peer_id, reason=...)``; ``install`` wraps that
method. Real hosts on loopback.
"""

from __future__ import annotations

import inspect

import trio
from libp2p.host.basic_host import BasicHost
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import identifydefer
from strangers.node.libp2p.host import build_host, running_host

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


def identified(host, peer_id) -> bool:
    """Whether ``host`` ran identify on ``peer_id`` (it knows the peer's protocols)."""
    try:
        return bool(host.get_peerstore().supports_protocols(peer_id, [str(IDENTIFY)]))
    except Exception:  # not in the peerstore yet
        return False


async def wait_until(check, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.01)


def test_the_library_still_schedules_identify_through_the_method_we_wrap() -> None:
    source = inspect.getsource(BasicHost)
    assert 'self._schedule_identify(peer_id, reason="notifee-connected")' in source
    assert "self._identify_tasks" in source  # host.close() cancels the scopes in it
    assert list(inspect.signature(BasicHost._schedule_identify).parameters) == ["self", "peer_id", "reason"]


async def pair(delay: float | None):
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    asked: list[tuple[object, str]] = []

    def delay_for(peer_id):
        asked.append(peer_id)
        return delay

    identifydefer.install(server, delay_for)
    return server, client, asked


async def test_a_named_peer_is_identified_only_after_its_delay() -> None:
    server, client, asked = await pair(30.0)
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(PeerInfo(server.get_id(), server.get_addrs()))
        # the client's own identify of the server is through: the library's runs happened
        await wait_until(lambda: identified(client, server.get_id()))
        await wait_until(lambda: client.get_id() in asked)
        assert identifydefer.inbound_direct(server, client.get_id())
        assert not identifydefer.inbound_direct(client, server.get_id())
        await trio.sleep(0.2)
        assert not identified(server, client.get_id())  # deferred, not lost
        assert server._identify_tasks  # the deferred one is the host's to cancel
    # the host closed with the identify still waiting: cancelled, nothing raised


async def test_a_short_delay_still_identifies_the_peer() -> None:
    server, client, asked = await pair(0.05)
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(PeerInfo(server.get_id(), server.get_addrs()))
        await wait_until(lambda: identified(server, client.get_id()))
        assert client.get_id() in asked


async def test_no_delay_identifies_at_once_as_before() -> None:
    server, client, asked = await pair(None)
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        await client.connect(PeerInfo(server.get_id(), server.get_addrs()))
        await wait_until(lambda: identified(server, client.get_id()), timeout=5)
