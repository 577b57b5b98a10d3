"""Canaries for the front door (``node/frontdoor.py``, ``node/libp2p/dnsaddr.py``).

* the swarm still refuses ``/dnsaddr`` addresses (why ``dnsaddr.py`` resolves them);
* identify still fills the peerstore's protocol list of a connected peer (how the
  front door tells a strangers node from a plain libp2p node).
"""

from __future__ import annotations

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host

from canary import changed

LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")
MARK = TProtocol("/strangers/canary/1.0.0")


async def test_the_swarm_still_refuses_dnsaddr_addresses() -> None:
    host = build_host(fresh_identity())
    other = fresh_identity().peer_id
    async with running_host(host, [LOOPBACK]):
        info = PeerInfo(other, [Multiaddr("/dnsaddr/localhost")])
        reason = ""
        with trio.fail_after(10):
            try:
                await host.connect(info)
            except Exception as exc:  # "No supported transport" in 0.8.1
                reason = repr(exc) + repr(exc.__cause__)
    assert "no supported transport" in reason.lower(), changed(
        "dnsaddr", "the swarm no longer refuses a /dnsaddr address as it did: "
                   "node/libp2p/dnsaddr.py may no longer be needed")


async def test_identify_still_lists_a_connected_peers_protocols() -> None:
    server, client = build_host(fresh_identity()), build_host(fresh_identity())

    async def handler(stream) -> None:
        await stream.close()

    server.set_stream_handler(MARK, handler)
    async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
        with trio.fail_after(10):
            await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
        protocols: list = []
        with trio.move_on_after(5):
            while MARK not in protocols:
                try:
                    protocols = list(client.get_peerstore().get_protocols(server.get_id()))
                except Exception:  # not identified yet
                    protocols = []
                await trio.sleep(0.02)
    assert MARK in protocols, changed(
        "frontdoor", "identify no longer fills peerstore.get_protocols(peer) for a connected peer; "
                     "FrontDoor._is_strangers_node cannot tell a strangers node")
