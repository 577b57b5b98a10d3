"""A lobby member that floods (prints JSON): the flooder of ``tests/integration/test_lobby_flood.py``.

Valid signed messages on the lobby topic, ~1000 a second, written straight
into a meshsub stream to every member given (docs/protocol.md §10, the
GossipSub RPC format; not py-libp2p's router, whose queues would throttle
it), for ``--seconds``; ``bench/lobby.py --flood`` runs it beside the members.

    .venv/bin/python bench/lobby_flooder.py --topic TOPIC --seconds 6 ADDR/p2p/ID ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_lobby_flood import flood  # noqa: E402


async def run(topic: str, seconds: float, addrs: list[str]) -> dict:
    stop = trio.Event()
    counts: dict = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood, addrs, topic, stop, counts)
        await trio.sleep(seconds)
        stop.set()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("addrs", nargs="+")
    args = parser.parse_args()
    print(json.dumps(trio.run(run, args.topic, args.seconds, args.addrs)), flush=True)


if __name__ == "__main__":
    main()
