"""Integration: stale provider records (strangers who left without a word) are skipped fast."""

from __future__ import annotations

import os
import socket

import trio
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.discovery.matcher import MatchState
from strangers.node import NodeConfig, fresh_identity, open_node
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.matching import DIAL_TIMEOUT


def _config() -> NodeConfig:
    return NodeConfig(listen=("/ip4/127.0.0.1/tcp/0",), bootstrap=(), mdns=False,
                      interests=("go",), interests_only=True)


async def _propose_to(node, addr: str) -> tuple[object, float]:
    ghost = fresh_identity().peer_id
    node.stop_search()
    node.matcher.stop()
    node.matcher.start_search(trio.current_time())
    node.matcher.propose(ghost.to_bytes())
    started = trio.current_time()
    answer = await node.matching.propose(PeerInfo(ghost, [Multiaddr(addr)]), os.urandom(16), ("go",))
    return answer, trio.current_time() - started


async def test_a_candidate_whose_port_is_closed_is_skipped_at_once():
    quiet_library_logs()
    with socket.socket() as probe:  # a port nobody listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with open_node(_config()) as node:
        with trio.fail_after(5):
            answer, took = await _propose_to(node, f"/ip4/127.0.0.1/tcp/{port}")
        assert answer is None
        assert took < 0.5
        assert node.matcher.state is MatchState.PROPOSING  # the node decides what next


async def test_a_candidate_that_never_answers_is_skipped_within_a_second():
    """A tarpit: the kernel completes the TCP handshake, nothing speaks after it."""
    quiet_library_logs()
    with socket.socket() as tarpit:
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(16)
        port = tarpit.getsockname()[1]
        async with open_node(_config()) as node:
            with trio.fail_after(5):
                answer, took = await _propose_to(node, f"/ip4/127.0.0.1/tcp/{port}")
            assert answer is None
            assert DIAL_TIMEOUT <= took < DIAL_TIMEOUT + 0.5


async def test_the_swarm_does_not_dial_peers_by_itself():
    """py-libp2p's auto-connector dials every peer in the peerstore until it
    holds ~150 connections; ours must stay at what we dial."""
    quiet_library_logs()
    with socket.socket() as tarpit:
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(16)
        port = tarpit.getsockname()[1]
        async with open_node(_config()) as node:
            ghost = fresh_identity().peer_id
            node.host.get_peerstore().add_addrs(ghost, [Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")], 600)
            await node.host.get_network().auto_connector.maybe_connect()
            tarpit.setblocking(False)
            try:
                tarpit.accept()
                dialled = True
            except BlockingIOError:
                dialled = False
            assert not dialled
