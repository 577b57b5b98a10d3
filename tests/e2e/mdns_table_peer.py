"""One DHT node with our mDNS discovery, for tests/e2e/test_mdns_table.py (run inside a namespace).

    python mdns_table_peer.py IP server|client

Prints one JSON line when ready (``{"id": ...}``), then every 0.2 s a snapshot:
the routing table, every peer that was ever admitted to it (admissions are
recorded as they happen, so a peer listed and dropped between two snapshots
still shows), and identify's verdict on each connected peer (does it list
/strangers/kad/1.0.0?).
"""

from __future__ import annotations

import json
import sys

import trio
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.addresses import announcements
from strangers.node.libp2p.host import build_host, quiet_library_logs
from strangers.node.libp2p.kad import StrangersDHT
from strangers.node.libp2p.mdns import LocalDiscovery


def _say(value: object) -> None:
    print(json.dumps(value), flush=True)


async def main(ip: str, mode: str) -> None:
    quiet_library_logs()
    host = build_host(fresh_identity())
    book = announcements(host)
    async with host.run([Multiaddr(f"/ip4/{ip}/tcp/0")]):
        dht = StrangersDHT(host, DHTMode.SERVER if mode == "server" else DHTMode.CLIENT)
        ever: set[str] = set()
        admit = dht.routing_table.add_peer

        async def recorded_add_peer(peer, **kwargs):
            added = await admit(peer, **kwargs)
            if added:
                ever.add(getattr(peer, "peer_id", peer).to_base58())
            return added

        dht.routing_table.add_peer = recorded_add_peer  # type: ignore[method-assign]
        async with background_trio_service(dht), trio.open_nursery() as nursery:
            discovery = LocalDiscovery(host, dht, book, interfaces=[ip])
            await nursery.start(discovery.serve)
            _say({"id": host.get_id().to_base58()})
            while True:
                await trio.sleep(0.2)
                identified = {peer.to_base58(): dht.advertises(peer) for peer in host.get_connected_peers()}
                _say({"table": sorted(p.to_base58() for p in dht.routing_table.get_peer_ids()),
                      "ever": sorted(ever), "identified": identified})


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
