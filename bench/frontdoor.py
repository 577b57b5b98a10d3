"""What the front door costs the public DHT, on loopback (prints JSON).

A fake public network of ``--public`` py-libp2p nodes speaking only
/ipfs/kad/1.0.0, ``--servers`` strangers servers that joined through it and
announced the rendezvous key, then newcomers with the default bootstrap list
pointed at the public nodes through ``/dnsaddr`` (a DNS server of our own):

* first launch (empty cache): DNS queries, requests sent to the DHT while
  entering, rendezvous lookups, servers found, seconds the front door took (cache, DNS, dials, the lookup);
* second launch (the cache written by the first): the same figures, which
  should show the public network spared (no DNS, no lookup).

    .venv/bin/python bench/frontdoor.py [--public 20] [--servers 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from dnsfake import serving_dns  # noqa: E402

from strangers.node import NodeConfig, open_node  # noqa: E402
from strangers.node import config as node_config  # noqa: E402
from strangers.node.libp2p import dnsaddr  # noqa: E402
from strangers.node.libp2p.host import quiet_library_logs  # noqa: E402

from dhtnet import dht_network  # noqa: E402

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)


async def _launch(dns) -> dict:
    asked = len(dns.queries)
    async with open_node(NodeConfig(listen=LOOPBACK, mdns=False, behind_nat=True, chat=True)) as node:
        door = node.front_door
        return {
            "front_door_s": round(door.entered_in, 3),
            "dns_queries": len(dns.queries) - asked,
            "rendezvous_lookups": door.lookups,
            "dht_requests_at_launch": node.dht.stats.messages,
            "servers_found": len(door.servers),
        }


async def main(args) -> dict:
    quiet_library_logs()
    rounds: dict[str, list[dict]] = {"first_launch": [], "cached_launch": []}
    async with AsyncExitStack() as stack:
        public = await stack.enter_async_context(dht_network(args.public))
        records = {"_dnsaddr.bootstrap.test": [f"dnsaddr={p.host.get_addrs()[0]}" for p in public]}
        dns = await stack.enter_async_context(serving_dns(records))
        os.environ[dnsaddr.ENV_DNS] = dns.address
        node_config.DEFAULT_BOOTSTRAP = tuple(
            f"/dnsaddr/bootstrap.test/p2p/{p.id.to_base58()}" for p in public[:4])
        seed = (str(public[-1].host.get_addrs()[0]),)
        for index in range(args.servers):
            os.environ["STRANGERS_HOME"] = tempfile.mkdtemp(prefix=f"server{index}-")
            server = await stack.enter_async_context(open_node(NodeConfig(
                chat=False, listen=LOOPBACK, bootstrap=seed, mdns=False)))
            with trio.fail_after(60):
                while not server.dht.stats.rpcs.get("ADD_PROVIDER"):
                    await trio.sleep(0.05)
        await trio.sleep(1.0)
        for _ in range(args.rounds):
            os.environ["STRANGERS_HOME"] = tempfile.mkdtemp(prefix="newcomer-")
            rounds["first_launch"].append(await _launch(dns))
            rounds["cached_launch"].append(await _launch(dns))

    def summary(items: list[dict]) -> dict:
        return {key: statistics.median(item[key] for item in items) for key in items[0]}

    return {"public_nodes": args.public, "servers": args.servers, "rounds": args.rounds,
            "median": {name: summary(items) for name, items in rounds.items()}, "runs": rounds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=int, default=20)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    print(json.dumps(trio.run(main, parser.parse_args()), indent=1))
