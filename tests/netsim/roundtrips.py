"""Round trips per phase between two py-libp2p hosts through the delaying proxy.

Every phase is timed with the proxy's fixed one-way delay ``D`` (no jitter,
no loss) and reported in one-way *flights*: ``floor(elapsed / D)``. The
proxy is never early, so CPU time only adds, and while a phase's CPU time
stays under ``D`` (a few tens of ms on loopback, both hosts in one process)
the count is exact: tests assert on counts, not on wall-time thresholds.
Two flights are one round trip. On a loaded machine a phase's CPU time can
pass ``D``; the proxy's :class:`~delayproxy.FlightClock` counts the flights
the chunks made, and a phase reports the smaller of the two (as
:mod:`matchtrips` does).

Phases, as a stranger pays them when it proposes to a candidate it has no
connection to yet (the first three also for any stream of ours):

* ``fresh``: TCP connect, security negotiation, Noise XX, muxer negotiation,
  a new stream with its protocol negotiation, one request and its answer;
* ``stream``: on the open connection, a new stream and one request/answer;
* ``request``: one more request/answer on an open stream.

The request is a 4-byte length-prefixed echo, as the match protocol's frames
are. ``python tests/netsim/roundtrips.py [--delay 0.1] [--plain]`` prints
the figures as JSON (``--plain``: py-libp2p's host as it comes, without the
round-trip savings of :mod:`strangers.node.libp2p.multistream`).
"""

from __future__ import annotations

import argparse
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio
from delayproxy import CLIENT, DelayProxy, PathSettings
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p.host import build_host, running_host
from strangers.node.libp2p.streamio import read_exactly

ECHO = TProtocol("/strangers/echo/1.0.0")
LOOPBACK = Multiaddr("/ip4/127.0.0.1/tcp/0")


async def echo_handler(stream) -> None:
    """Answer length-prefixed requests with the same frame until the stream ends."""
    try:
        while True:
            prefix = await read_exactly(stream, 4)
            body = await read_exactly(stream, struct.unpack(">I", prefix)[0])
            await stream.write(prefix + body)
    except Exception:  # the end of the stream, or a reset
        pass
    finally:
        try:
            await stream.close()
        except Exception:
            pass


async def request(stream, payload: bytes = b"hello") -> bytes:
    """One length-prefixed request and its echo."""
    await stream.write(struct.pack(">I", len(payload)) + payload)
    prefix = await read_exactly(stream, 4)
    return await read_exactly(stream, struct.unpack(">I", prefix)[0])


@dataclass
class Phases:
    delay: float
    fresh: float
    stream: float
    request: float
    counted: dict[str, int] | None = None
    """The flights the proxy counted in each phase (None: only the wall clock)."""

    def flights(self) -> dict[str, int]:
        wall = {name: math.floor(getattr(self, name) / self.delay) for name in ("fresh", "stream", "request")}
        if self.counted is None:
            return wall
        return {name: min(flights, self.counted[name]) for name, flights in wall.items()}


def default_host_factory():
    return build_host(fresh_identity())


async def measure_phases(delay: float, *, dialer_factory: Callable[[], object] = default_host_factory,
                         listener_factory: Callable[[], object] = default_host_factory,
                         protocol: TProtocol = ECHO) -> Phases:
    """Time the three phases from a dialer to a listener across a proxy of one-way ``delay``."""
    dialer, listener = dialer_factory(), listener_factory()
    listener.set_stream_handler(protocol, echo_handler)
    async with running_host(listener, [LOOPBACK]):
        port = int(listener.get_transport_addrs()[0].value_for_protocol("tcp"))
        return await measure_phases_to(dialer, listener.get_id(), port, delay, protocol)


async def _settle(proxy: DelayProxy, delay: float) -> None:
    """Let the last phase's stragglers (a close, identify, a window update) land, then count
    from zero: a chunk sent before the reset would carry its old depth into the next phase.
    Quiet means no chunk read for a round trip (the caller's ``fail_after`` bounds the wait)."""
    while True:
        chunks = proxy.stats.chunks
        await trio.sleep(2 * delay)
        if proxy.stats.chunks == chunks:
            break
    proxy.flights.reset()


async def measure_phases_to(dialer, peer_id, port: int, delay: float,
                            protocol: TProtocol = ECHO) -> Phases:
    """The three phases from ``dialer`` (not yet running) to an echo at 127.0.0.1:``port``."""
    async with running_host(dialer, [LOOPBACK]):
        async with trio.open_nursery() as nursery:
            proxy = DelayProxy(PathSettings(delay), target=("127.0.0.1", port))
            proxy_port = await nursery.start(proxy.serve)
            info = PeerInfo(peer_id, [Multiaddr(f"/ip4/127.0.0.1/tcp/{proxy_port}")])
            counted: dict[str, int] = {}
            with trio.fail_after(60 * delay + 10):
                proxy.flights.reset()
                started = trio.current_time()
                await dialer.connect(info)
                stream = await dialer.new_stream(info.peer_id, [protocol])
                assert await request(stream) == b"hello"
                fresh = trio.current_time() - started
                counted["fresh"] = proxy.flights.depth[CLIENT]
                await stream.close()

                await _settle(proxy, delay)
                started = trio.current_time()
                stream = await dialer.new_stream(info.peer_id, [protocol])
                assert await request(stream) == b"hello"
                opened = trio.current_time() - started
                counted["stream"] = proxy.flights.depth[CLIENT]

                await _settle(proxy, delay)
                started = trio.current_time()
                assert await request(stream) == b"hello"
                again = trio.current_time() - started
                counted["request"] = proxy.flights.depth[CLIENT]
                await stream.close()
            nursery.cancel_scope.cancel()
    return Phases(delay, fresh, opened, again, counted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.1, help="one-way delay, seconds")
    parser.add_argument("--plain", action="store_true", help="py-libp2p's host without our savings")
    args = parser.parse_args(argv)

    def factory():
        return build_host(fresh_identity(), optimistic=not args.plain)

    phases = trio.run(lambda: measure_phases(args.delay, dialer_factory=factory, listener_factory=factory))
    print(json.dumps({"delay": args.delay, "seconds": {"fresh": phases.fresh, "stream": phases.stream,
                                                       "request": phases.request},
                      "flights": phases.flights()}))


if __name__ == "__main__":
    main()
