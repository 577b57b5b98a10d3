"""A TCP proxy that delays every chunk: latency, jitter and loss for tests (this kernel has no netem).

Each direction of a proxied connection is a pipe: a reader stamps every chunk
it receives with a due time (``now + delay`` plus jitter), a writer sends it
when it is due. Due times never go backwards, so bytes keep their order
(jitter reorders nothing, as on one TCP connection). Loss is emulated as TCP
shows it to the application: a "lost" chunk stalls its direction for
``stall`` seconds (the retransmission), and everything behind it waits too.

A new connection first waits one round trip (``2 * delay``) before the onward
connection is opened, as the SYN and SYN-ACK would. So through the proxy a
request and its reply take ``2 * delay``, a new connection one more.

Two ways to say where to go: a fixed ``target`` (tests on loopback), or the
original destination of a connection that iptables REDIRECTed to us
(``SO_ORIGINAL_DST``). The delay router of the benchmarks no longer uses
it (it delays packets, keeping their addresses: ``tundelay.py``); the
round-trip counters do, in-process. Run as a program for a router
namespace: ``python delayproxy.py --delay 0.15 --loss 0.01`` prints ``ready PORT``
once it listens.

Flights are counted as well as delayed (:class:`FlightClock`): each chunk
carries one more than the deepest flight its sender had received when it
sent it (a Lamport clock over the two sides), so a test can count the round
trips of an exchange without the machine's CPU time in the count.

Stops cleanly: cancelling :func:`serve_delay_proxy` closes the listener and
every proxied connection.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import struct
import sys
from dataclasses import dataclass

import trio

SO_ORIGINAL_DST = 80
"""``linux/netfilter_ipv4.h``: the address a REDIRECTed connection was sent to."""
CHUNK = 65536
QUEUED_CHUNKS = 256
"""Chunks in flight per direction before the reader stops reading (back-pressure)."""


@dataclass(frozen=True)
class PathSettings:
    """One-way behaviour of the emulated path (the same in both directions)."""

    delay: float
    """One-way delay in seconds: a round trip through the proxy takes twice this."""
    jitter: float = 0.0
    """Each chunk's delay varies uniformly by up to this much either way (order kept)."""
    loss: float = 0.0
    """Probability that a chunk is "lost": its direction stalls for ``stall``."""
    stall: float = 0.3
    """Extra delay of a lost chunk: a retransmission (Linux waits at least 200 ms, plus a round trip)."""
    handshake: bool = True
    """A new connection waits one round trip before any byte flows (the TCP handshake)."""

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0 or not 0 <= self.loss < 1 or self.stall < 0:
            raise ValueError(f"bad path settings: {self!r}")

    @classmethod
    def for_rtt(cls, rtt: float, **options: float | bool) -> PathSettings:
        return cls(delay=rtt / 2, **options)  # type: ignore[arg-type]


@dataclass
class ProxyStatistics:
    connections: int = 0
    failed_connects: int = 0
    chunks: int = 0
    stalls: int = 0
    bytes: int = 0


CLIENT = "client"
"""The side that dials the proxy."""
SERVER = "server"
"""The side the proxy dials onward (the target)."""


class FlightClock:
    """How many one-way flights deep each side's knowledge is, counted as chunks cross the proxy.

    A chunk read from one side is one flight deeper than the deepest chunk
    already delivered to that side (what its sender could have waited for);
    delivering it raises the receiving side to its depth. A new connection
    is two flights (SYN, SYN-ACK) before its first chunk. With no CPU time
    this equals ``floor(elapsed / delay)``; under load a late task adds wall
    time but no flight, unless it sends only after an unrelated chunk came
    in (so it counts at most what the wall clock would, and usually exactly
    the round trips the protocol needs).
    """

    def __init__(self) -> None:
        self.depth = {CLIENT: 0, SERVER: 0}

    def reset(self) -> None:
        """Start counting from here (both sides at flight 0)."""
        self.depth = {CLIENT: 0, SERVER: 0}

    def sent_by(self, side: str) -> int:
        return self.depth[side] + 1

    def delivered_to(self, side: str, flight: int) -> None:
        self.depth[side] = max(self.depth[side], flight)


def _other(side: str) -> str:
    return SERVER if side == CLIENT else CLIENT


def original_destination(sock: trio.socket.SocketType) -> tuple[str, int]:
    """Where a connection REDIRECTed by iptables was going (IPv4)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


class DelayProxy:
    """Proxies connections with the delays of ``settings``; ``rng`` decides jitter and loss."""

    def __init__(self, settings: PathSettings, *, target: tuple[str, int] | None = None,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.target = target
        self.rng = rng or random.Random()
        self.stats = ProxyStatistics()
        self.flights = FlightClock()

    def _due(self, now: float, last_due: float) -> float:
        settings = self.settings
        due = now + settings.delay
        if settings.jitter:
            due += self.rng.uniform(-settings.jitter, settings.jitter)
        if settings.loss and self.rng.random() < settings.loss:
            self.stats.stalls += 1
            due += settings.stall
        return max(due, last_due, now)

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream, side: str = CLIENT) -> None:
        """Copy ``source`` (``side``) to ``sink``, each chunk when it is due; EOF passed on in order."""
        send, receive = trio.open_memory_channel[tuple[float, bytes, int]](QUEUED_CHUNKS)

        async def read() -> None:
            last_due = 0.0
            async with send:
                while True:
                    try:
                        data = await source.receive_some(CHUNK)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        data = b""
                    last_due = self._due(trio.current_time(), last_due)
                    await send.send((last_due, data, self.flights.sent_by(side)))
                    if not data:
                        return
                    self.stats.chunks += 1
                    self.stats.bytes += len(data)

        async def write() -> None:
            async with receive:
                async for due, data, flight in receive:
                    await trio.sleep_until(due)
                    if not data:
                        try:
                            await sink.send_eof()
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                            pass
                        return
                    # Counted before the send: a peer on loopback can answer (and our reader
                    # read that answer) before send_all returns, and the answer would then
                    # count one flight short (a js-libp2p echo did, now and then, in CI).
                    self.flights.delivered_to(_other(side), flight)
                    await sink.send_all(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            nursery.start_soon(write)

    async def handle(self, client: trio.SocketStream) -> None:
        """Proxy one accepted connection to its destination, with delays, until both sides end."""
        self.stats.connections += 1
        try:
            destination = self.target or original_destination(client.socket)
            syn = self.flights.sent_by(CLIENT)
            if self.settings.handshake:
                await trio.sleep(2 * self.settings.delay)
                self.flights.delivered_to(SERVER, syn)
                self.flights.delivered_to(CLIENT, syn + 1)  # the SYN-ACK
            try:
                server = await trio.open_tcp_stream(*destination)
            except OSError:
                self.stats.failed_connects += 1
                _reset(client)
                return
            async with server:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._pipe, client, server, CLIENT)
                        nursery.start_soon(self._pipe, server, client, SERVER)
                except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    _reset(client)
                    _reset(server)
        finally:
            await trio.aclose_forcefully(client)

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on ``host:port`` (0: any free port) and proxy until cancelled; started with the port."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.handle, listeners)


def _reset(stream: trio.SocketStream) -> None:
    """Make the next close send a reset (the peer sees the connection fail, not end)."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


async def serve_delay_proxy(settings: PathSettings, *, host: str = "127.0.0.1", port: int = 0,
                            target: tuple[str, int] | None = None, rng: random.Random | None = None,
                            task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    await DelayProxy(settings, target=target, rng=rng).serve(host, port, task_status=task_status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, required=True, help="one-way delay, seconds")
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--stall", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--target", default=None, help="HOST:PORT (default: SO_ORIGINAL_DST)")
    args = parser.parse_args(argv)
    settings = PathSettings(args.delay, args.jitter, args.loss, args.stall)
    target = None
    if args.target:
        target_host, _, target_port = args.target.rpartition(":")
        target = (target_host, int(target_port))
    proxy = DelayProxy(settings, target=target, rng=random.Random(args.seed))

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(proxy.serve, args.listen, args.port)
                print(f"ready {port}", flush=True)
                async for _signal in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(run)
    print(f"stats {proxy.stats}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover - a proxy in a namespace of one's own
    main()
