"""An answer in many small writes on an idle connection, through a packet-level delay.

Two processes on the hosts of a :class:`~delayrouter.DelayRouter` (real TCP,
so the kernel's congestion window is in play, which the userspace delaying
proxy hides: its kernel connections are on loopback)::

    python bursttrips.py serve IP [--plain-writes]
    python bursttrips.py burst MULTIADDR RTT [--writes 30]

``serve`` runs a strangers host (:func:`~strangers.node.libp2p.host.build_host`)
whose ``/strangers/burst/1.0.0`` handler answers a request (one byte: how
many) with that many 8-byte writes, then closes; ``--plain-writes`` gives it
py-libp2p's own Yamux writes (one Noise message and TCP segment per frame)
instead of :mod:`strangers.node.libp2p.framebatch`. ``burst`` connects, lets
the connection sit idle for :data:`IDLE` seconds (Linux then restarts its
congestion window at the initial 10 segments, as for a new connection), asks
for ``--writes`` writes and prints, as JSON, the time until the stream's end
in round trips of ``RTT``.

A node answering a newcomer writes a dozen small frames at once (``bench/run.py``'s
seed: 13 segments before the Kademlia answer). One segment per frame: the
answer waits a round trip for acknowledgements after the tenth. Batched: one
round trip.
"""

from __future__ import annotations

import argparse
import json
import sys

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import framebatch
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host
from strangers.node.libp2p.streamio import read_exactly, read_some

BURST = TProtocol("/strangers/burst/1.0.0")
IDLE = 2.5
"""Seconds of idleness before the request (well past the RTO: the window restarts)."""


async def answer_in_pieces(stream) -> None:
    count = (await read_exactly(stream, 1))[0]
    for index in range(count):
        await stream.write(b"piece%03d" % index)
    await stream.close()


async def serve(ip: str, plain_writes: bool) -> None:
    host = build_host(fresh_identity())
    if plain_writes:
        framebatch.uninstall()
    host.set_stream_handler(BURST, answer_in_pieces)
    async with running_host(host, [Multiaddr(f"/ip4/{ip}/tcp/0")]):
        print(host.get_addrs()[0], flush=True)
        await trio.sleep_forever()


async def burst(addr: str, rtt: float, writes: int) -> dict:
    host = build_host(fresh_identity())
    info = info_from_p2p_addr(Multiaddr(addr))
    async with running_host(host, [Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await host.connect(info)
        stream = await host.new_stream(info.peer_id, [BURST])
        await trio.sleep(IDLE)
        received = b""
        started = trio.current_time()
        with trio.fail_after(30 * rtt):
            await stream.write(bytes([writes]))
            while chunk := await read_some(stream, 4096):
                received += chunk
        elapsed = trio.current_time() - started
    return {"writes": writes, "bytes": len(received), "seconds": elapsed, "round_trips": elapsed / rtt}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    server = sub.add_parser("serve")
    server.add_argument("ip")
    server.add_argument("--plain-writes", action="store_true")
    client = sub.add_parser("burst")
    client.add_argument("addr")
    client.add_argument("rtt", type=float)
    client.add_argument("--writes", type=int, default=30)
    args = parser.parse_args(argv)
    quiet_library_logs()
    if args.mode == "serve":
        trio.run(serve, args.ip, args.plain_writes)
    else:
        print(json.dumps(trio.run(burst, args.addr, args.rtt, args.writes)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
