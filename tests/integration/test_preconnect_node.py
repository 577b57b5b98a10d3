"""Integration: a node started with early connections (``strangers.preconnect``) takes its
seed's and closes, once ready, the ones no dial took."""

from __future__ import annotations

import socket

import trio
from multiaddr import Multiaddr

from strangers import preconnect
from strangers.node import NodeConfig, open_node

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
                config = NodeConfig(chat=False, listen=LOOPBACK, mdns=False, bootstrap=(seed_addr,))
                async with open_node(config) as node:  # entered: ready
                    assert preconnect.waiting() == []  # the seed's taken, the other one closed
                    assert seed.host.get_id() in node.host.get_network().connections
                accepted = bystander.accept()[0]
                with accepted:
                    accepted.settimeout(5)
                    assert accepted.recv(1) == b""  # its early connection was closed unused
    finally:
        preconnect.close_all()
        bystander.close()
