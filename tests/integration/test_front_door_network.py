"""The front door on loopback: a fake public DHT, strangers servers, a local DNS.

The "public network" is three py-libp2p nodes that speak only /ipfs/kad/1.0.0
(tests/integration/dhtnet.py); the default bootstrap list is replaced by
``/dnsaddr`` names that a DNS server of the test's own resolves
(tests/dnsfake.py, named with ``$STRANGERS_DNS``). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from contextlib import AsyncExitStack
from pathlib import Path

import trio
from dnsfake import serving_dns

from strangers.node import NodeConfig, events, open_node
from strangers.node import config as node_config
from strangers.node.libp2p import dnsaddr
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.libp2p.kad import PUBLIC_KAD_PROTOCOL

from dhtnet import dht_network, next_event

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


def _cache() -> dict:
    path = Path(os.environ["STRANGERS_HOME"]) / "servers.json"
    return json.loads(path.read_text()) if path.exists() else {"servers": []}


async def _public_list(monkeypatch, public, stack: AsyncExitStack):
    """Point the default bootstrap list at the fake public network, through /dnsaddr."""
    records = {"_dnsaddr.bootstrap.test": [f"dnsaddr={peer.host.get_addrs()[0]}" for peer in public]}
    dns = await stack.enter_async_context(serving_dns(records))
    monkeypatch.setenv(dnsaddr.ENV_DNS, dns.address)
    monkeypatch.setattr(node_config, "DEFAULT_BOOTSTRAP", tuple(
        f"/dnsaddr/bootstrap.test/p2p/{peer.id.to_base58()}" for peer in public[:2]))
    return dns


async def test_a_newcomer_finds_servers_on_the_public_dht_then_uses_its_cache_first(
        monkeypatch, tmp_path):
    quiet_library_logs()
    async with AsyncExitStack() as stack:
        public = await stack.enter_async_context(dht_network(3, protocol=PUBLIC_KAD_PROTOCOL))
        dns = await _public_list(monkeypatch, public, stack)
        seed = (str(public[2].host.get_addrs()[0]),)  # servers join through a public node
        servers = []
        for index in range(2):  # each with a data directory of its own, as on two machines
            with monkeypatch.context() as env:
                env.setenv("STRANGERS_HOME", str(tmp_path / f"server{index}"))
                servers.append(await stack.enter_async_context(open_node(NodeConfig(
                    chat=False, listen=LOOPBACK, bootstrap=seed, mdns=False))))
        for server in servers:  # each announced itself on the rendezvous key
            with trio.fail_after(30):
                while server.front_door.announcements < 1:
                    await trio.sleep(0.05)
        server_ids = {server.peer_id for server in servers}
        for server in servers:  # a client of the public DHT: it never serves its protocol
            assert PUBLIC_KAD_PROTOCOL not in server.host.get_mux().handlers
            assert server.front_door.public.dht is not server.dht
        with trio.fail_after(10):  # the announcements reached the public nodes
            while not all(server.front_door.public.dht.stats.rpcs.get("ADD_PROVIDER") for server in servers):
                await trio.sleep(0.05)
            await trio.sleep(0.5)

        # first run: DNS, the public peers, ONE rendezvous lookup, the servers dialled
        async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, behind_nat=True)) as newcomer:
            door = newcomer.front_door
            assert door.lookups == 1
            assert {peer.to_base58() for peer in door.servers} == server_ids
            connected = {peer.to_base58() for peer in newcomer.host.get_connected_peers()}
            assert server_ids <= connected
            assert "_dnsaddr.bootstrap.test" in dns.queries
        assert {entry["peer"] for entry in _cache()["servers"]} == server_ids
        assert all(entry["addrs"] for entry in _cache()["servers"])

        # next run: the cache first, the public network untouched (no DNS, no lookup)
        asked = len(dns.queries)
        async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, behind_nat=True)) as again:
            assert again.front_door.lookups == 0
            assert len(dns.queries) == asked
            connected = {peer.to_base58() for peer in again.host.get_connected_peers()}
            assert server_ids <= connected
            public_ids = {peer.id.to_base58() for peer in public}
            assert not public_ids & {peer.to_base58() for peer in again.front_door.servers}


async def test_no_strangers_server_on_the_public_dht_is_said(monkeypatch):
    quiet_library_logs()
    async with AsyncExitStack() as stack:
        public = await stack.enter_async_context(dht_network(3, protocol=PUBLIC_KAD_PROTOCOL))
        await _public_list(monkeypatch, public, stack)
        async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, behind_nat=True)) as lonely:
            warning = await next_event(lonely, events.Warning, timeout=30)
            assert "no strangers server found" in warning.message
            assert lonely.front_door.lookups == 1
            assert not lonely.front_door.servers
        assert _cache()["servers"] == []


async def test_bootstrap_peers_that_are_strangers_nodes_need_no_lookup():
    quiet_library_logs()
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False)) as chat_node:
        # a chat node speaks /strangers/match: a strangers node, no public DHT needed
        boot = (chat_node.addrs[0],)
        async with open_node(NodeConfig(listen=LOOPBACK, bootstrap=boot, mdns=False,
                                        behind_nat=True)) as joiner:
            with trio.fail_after(10):  # identify, after ready (FrontDoor.settle)
                await joiner.front_door.settled.wait()
            assert joiner.front_door.lookups == 0
            assert chat_node.identity.peer_id in joiner.front_door.servers
