"""Integration: a node started with early connections (``strangers.preconnect``) takes its
seed's and closes, once ready, the ones no dial took."""

from __future__ import annotations

import socket

import trio
from multiaddr import Multiaddr

from strangers import preconnect
from strangers.node import NodeConfig, open_node
from strangers.node.libp2p import predial

LOOPBACK = (Multiaddr("/ip4/127.0.0.1/tcp/0"),)


async def test_the_seed_dial_takes_its_early_connection_and_the_rest_are_closed_at_ready():
    bystander = socket.socket()
    bystander.bind(("127.0.0.1", 0))
    bystander.listen(4)
    bystander.setblocking(False)
    try:
        with trio.fail_after(30):
            async with open_node(NodeConfig(chat=False, listen=LOOPBACK, mdns=False,
                                            bootstrap=())) as seed:
                seed_addr = f"{seed.addrs[0]}"
                other = f"/ip4/127.0.0.1/tcp/{bystander.getsockname()[1]}"
                assert preconnect.start([seed_addr, other]) == 2
                while not all(early.sent for early in preconnect._open.values()):
                    await trio.sleep(0.01)  # as during a launch's imports: the flights go out
                config = NodeConfig(chat=False, listen=LOOPBACK, mdns=False, bootstrap=(seed_addr,))
                async with open_node(config) as node:  # entered: ready
                    assert preconnect.waiting() == []  # the seed's taken, the other one closed
                    assert seed.host.get_id() in node.host.get_network().connections
                    # on loopback the seed's connection is through before the node dials:
                    # its first flight went out early, and the handshake went on from it
                    assert predial.handshake_seconds([Multiaddr(seed_addr)]) is not None
                accepted = bystander.accept()[0]
                with accepted:
                    accepted.settimeout(5)
                    received = b""
                    while chunk := accepted.recv(4096):
                        received += chunk
                    # its early connection carried its first flight, then was closed unused
                    assert received in (b"", preconnect.first_flight(received[-32:]))
    finally:
        preconnect.close_all()
        bystander.close()
