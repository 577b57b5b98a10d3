"""What searching costs the DHT: requests per minute per searching user and per server.

    python bench/dht_load.py [--servers 10] [--users 6] [--seconds 120] [--interests 1]

Starts ``--servers`` serve nodes and ``--users`` chat nodes in one process
(real py-libp2p hosts on loopback, the real ``open_node``), each user with
interests nobody else has and ``--interests-only``: they search for the whole
run and never match, the worst case of the load budget
(``discovery/budget.py``). Prints one JSON object:

* ``per_user``: requests each user sent in its first 10 s, and per minute
  after that (the budget: ``SEARCH_RATE`` = 1/s, i.e. 60/min);
* ``per_server``: inbound Kademlia requests each server answered (and shed)
  per minute;
* ``budget``: the shipped constants, for comparison.

Not part of the test suite (``tests/integration/test_load_budget.py`` runs a
small version of the same check).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack

import trio

from strangers.discovery import budget
from strangers.node.config import NodeConfig
from strangers.node.libp2p.host import quiet_library_logs
from strangers.node.node import open_node

LOOPBACK = ("/ip4/127.0.0.1/tcp/0",)
FIRST_SECONDS = 10.0


def _summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "max": ordered[-1], "min": ordered[0],
            "n": len(ordered)} if ordered else {}


async def measure(servers: int, users: int, seconds: float, interests: int) -> dict:
    quiet_library_logs()
    tag = uuid.uuid4().hex[:6]
    async with trio.open_nursery() as samplers, AsyncExitStack() as stack:
        serve_nodes = []
        addrs: list[str] = []
        for _ in range(servers):
            node = await stack.enter_async_context(open_node(NodeConfig(
                chat=False, listen=LOOPBACK, mdns=False, bootstrap=tuple(addrs[-3:]))))
            serve_nodes.append(node)
            addrs.append(node.addrs[0])
        await trio.sleep(2.0)  # the servers' tables fill
        served_before = [n.dht.limits.stats.allowed + n.dht.limits.stats.shed for n in serve_nodes]
        started = trio.current_time()
        chat_nodes = []
        first: list[int] = []
        user_started: list[float] = []

        async def sample_first(index: int, node) -> None:
            await trio.sleep_until(user_started[index] + FIRST_SECONDS)
            first[index] = node.dht.stats.messages

        for index in range(users):
            config = NodeConfig(
                interests=tuple(f"load-{tag}-{index}-{i}" for i in range(interests)),
                listen=LOOPBACK, mdns=False, interests_only=True,
                bootstrap=(addrs[index % len(addrs)],))
            node = await stack.enter_async_context(open_node(config))
            chat_nodes.append(node)
            user_started.append(trio.current_time())
            first.append(0)
            samplers.start_soon(sample_first, index, node)
        await trio.sleep_until(max(started + seconds, user_started[-1] + FIRST_SECONDS + 1))
        end = trio.current_time()
        elapsed = end - started
        total = [n.dht.stats.messages for n in chat_nodes]
        served = [n.dht.limits.stats.allowed + n.dht.limits.stats.shed - before
                  for n, before in zip(serve_nodes, served_before, strict=True)]
        shed = [n.dht.limits.stats.shed for n in serve_nodes]
        later = [end - t0 - FIRST_SECONDS for t0 in user_started]
        result = {
            "servers": servers, "users": users, "interests_per_user": interests,
            "seconds": round(elapsed, 1),
            "per_user": {
                "first_10s_requests": _summary([float(f) for f in first]),
                "requests_per_min_after_10s": _summary(
                    [(t - f) * 60.0 / span for f, t, span in zip(first, total, later, strict=True)]),
                "each": [{"first_10s": f, "after_10s": t - f, "seconds_after_10s": round(span, 1),
                          "table": n.dht.routing_table.size(), "dht_mode": n.dht.mode.value,
                          "lookups": n.dht.stats.lookups, "failures": n.dht.stats.rpc_failures}
                         for f, t, span, n in zip(first, total, later, chat_nodes, strict=True)],
            },
            "per_server": {
                "requests_per_min": _summary([s * 60.0 / elapsed for s in served]),
                "shed_total": sum(shed),
            },
            "budget": {"search_rate_per_min": budget.SEARCH_RATE * 60, "search_burst": budget.SEARCH_BURST,
                       "peer_rate_per_min": budget.PEER_RATE * 60, "server_rate_per_min": budget.SERVER_RATE * 60},
        }
        for node in chat_nodes:
            node.search.stopping = True
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=150.0,
                        help="from the first user's start to the end of the measurement")
    parser.add_argument("--interests", type=int, default=1)
    args = parser.parse_args()
    began = time.time()
    result = trio.run(measure, args.servers, args.users, args.seconds, args.interests)
    result["wall_seconds"] = round(time.time() - began, 1)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
