"""Copies per lobby message and CPU per copy, in one process (prints JSON).

6 members of one lobby and 2 of another (whole nodes, as in
``tests/integration/lobbynet.py``), each sending ``--messages`` at
``--rate``; counts every message copy a node receives over the wire
(GossipSub ``publish`` entries, duplicates included), and the process's CPU
time over the sending and delivery, so CPU per copy = CPU / copies.

    .venv/bin/python bench/lobby_copies.py [--members 6] [--others 2] [--messages 20] [--rate 10]
                                           [--before]

``--before`` undoes this session's three savings in the process (flood
publishing of every own message, seen copies scheduled as tasks, a Yamux
window update per read) to measure them against the same machine's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from libp2p.pubsub.gossipsub import GossipSub  # noqa: E402
from libp2p.pubsub.pubsub import Pubsub  # noqa: E402
from lobbynet import lobby_network, meshed, send_at  # noqa: E402

from strangers.discovery.lobby import lobby_topic  # noqa: E402

_copies = [0]
_wanted = [0]
_original = Pubsub._is_subscribed_to_msg
_original_iwant = GossipSub.emit_iwant


async def _counting_iwant(self, msg_ids, to_peer):
    _wanted[0] += len(msg_ids)
    await _original_iwant(self, msg_ids, to_peer)


def _counting(self, msg):
    _copies[0] += 1
    return _original(self, msg)


async def measure(members: int, others: int, messages: int, rate: float) -> dict:
    Pubsub._is_subscribed_to_msg = _counting  # every received publish entry passes here once
    GossipSub.emit_iwant = _counting_iwant  # copies asked for after an IHAVE
    interests = ["cinema"] * members + ["jazz"] * others
    async with lobby_network(*interests) as watches:
        cinema = watches[:members]
        await meshed(cinema, lobby_topic("cinema"), timeout=180)
        await meshed(watches[members:], lobby_topic("jazz"), timeout=180)
        await trio.sleep(2.0)
        _copies[0] = _wanted[0] = 0
        meshes = sorted(len(w.node.lobby.pubsub.router.mesh.get(lobby_topic("cinema"), ()))
                        for w in cinema)
        skipped = sum(w.node.lobby.pubsub.copies_skipped for w in watches)
        batched = sum(w.node.lobby.pubsub.rpcs_batched for w in watches)
        cpu = time.process_time()
        async with trio.open_nursery() as nursery:
            for index, watch in enumerate(watches):
                nursery.start_soon(send_at, watch.node, f"w{index}", messages, rate)
        expected = (members - 1) * messages
        for watch in cinema:
            try:
                await watch.until(lambda w=watch: len(w.received) >= expected, timeout=30)
            except trio.TooSlowError:
                pass
        await trio.sleep(1.5)
        cpu = time.process_time() - cpu
        copies, wanted = _copies[0], _wanted[0]
        skipped = sum(w.node.lobby.pubsub.copies_skipped for w in watches) - skipped
        batched = sum(w.node.lobby.pubsub.rpcs_batched for w in watches) - batched
        latencies = [arrived - float(event.text.split()[2])
                     for watch in cinema for arrived, event in watch.received]
        delivered = sum(len({e.id for _t, e in w.received}) for w in cinema)
        duplicates = sum(len(w.received) for w in cinema) - delivered
        published = (members + others) * messages
        useful = members * (members - 1) * messages + others * (others - 1) * messages
        return {
            "members": members, "others": others, "messages": messages, "rate": rate,
            "delivered": delivered, "expected": members * expected, "duplicates": duplicates,
            "copies_per_message": round(copies / published, 2),
            "useful_copies_per_message": round(useful / published, 2),
            "asked_by_iwant_per_message": round(wanted / published, 2),
            "skipped_per_message": round(skipped / published, 2),
            "batched_per_message": round(batched / published, 2),
            "mesh_sizes": meshes,
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_copy": round(1000 * cpu / max(copies, 1), 2),
            "median_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * sorted(latencies)[int(0.99 * (len(latencies) - 1))], 1),
        }


def undo_savings() -> None:
    from strangers.node.libp2p import gossip

    gossip.FLOOD_PUBLISH_UNTIL_MESH = False
    gossip.yamuxwindow.install = lambda: None
    del gossip.LobbyPubsub._is_subscribed_to_msg  # the library's: every copy gets a task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--others", type=int, default=2)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--before", action="store_true", help="without this session's savings")
    args = parser.parse_args()
    if args.before:
        undo_savings()
    print(json.dumps(trio.run(measure, args.members, args.others, args.messages, args.rate),
                     indent=2))


if __name__ == "__main__":
    main()
