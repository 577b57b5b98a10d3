"""Packet-level delay through a TUN device: latency, jitter and loss for forwarded IP (no netem here).

Run in a router namespace (root)::

    python tundelay.py --name dly0 --delay 0.05 [--jitter 0.01] [--loss 0.01] [--seed 1]

It creates the TUN device ``NAME`` (``IFF_TUN | IFF_NO_PI``: whole IPv4/IPv6
packets, no extra header), prints ``ready NAME`` once the device exists, and
from then on reads every packet the kernel routes into the device, holds it
for ``delay`` seconds (plus jitter, uniform in ``[-jitter, +jitter]``) and
writes it back into the device, from where the kernel routes it on to its
destination. Nothing of a packet is changed: TCP, UDP and ICMP alike keep
their source and destination addresses and ports, so hosts on either side see
each other as they are (no proxy, no NAT). The router sends packets here with
policy routing (``ip rule add iif HOSTLINK lookup N``, table ``N`` has
``default dev NAME``); the packets written back arrive on ``NAME``, which no
rule catches, and take the main table to the destination's link. See
:mod:`delayrouter`.

Jitter never reorders a flow: the due time of a packet is never earlier than
the due time of the previous packet between the same two addresses (as on
one path of the internet, which reorders rarely). Loss is real loss: a "lost"
packet is dropped, and TCP retransmits it after its own timeout (at least
200 ms on Linux; 1 s for a SYN), UDP applications see it missing.

Stops on SIGTERM or SIGINT and prints one line of counters on stderr:
``stats packets=N bytes=N dropped=N``; the device goes with the process.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535
MAX_HELD = 100_000
"""Packets held at once; past it, new packets are dropped (counted) as a full router queue drops them."""


def open_tun(name: str) -> int:
    """A new TUN device called ``name``; its file descriptor (non-blocking)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def flow_of(packet: bytes) -> bytes:
    """The two addresses of an IPv4 or IPv6 packet (the unit within which order is kept)."""
    if packet and packet[0] >> 4 == 6:
        return packet[8:40]
    return packet[12:20]


class Delayer:
    """Decides each packet's due time (or its loss); sans-IO, fed with the clock's readings."""

    def __init__(self, delay: float, jitter: float = 0.0, loss: float = 0.0,
                 rng: random.Random | None = None) -> None:
        if delay < 0 or jitter < 0 or not 0 <= loss < 1:
            raise ValueError("delay and jitter must be >= 0, loss in [0, 1)")
        self.delay, self.jitter, self.loss = delay, jitter, loss
        self.rng = rng or random.Random()
        self._last_due: dict[bytes, float] = {}
        self._held: list[tuple[float, int, bytes]] = []
        self._sequence = 0
        self.packets = self.bytes = self.dropped = 0

    def arrived(self, packet: bytes, now: float) -> None:
        if self.loss and self.rng.random() < self.loss:
            self.dropped += 1
            return
        if len(self._held) >= MAX_HELD:
            self.dropped += 1
            return
        due = now + self.delay
        if self.jitter:
            due += self.rng.uniform(-self.jitter, self.jitter)
        flow = flow_of(packet)
        due = max(due, self._last_due.get(flow, 0.0), now)
        self._last_due[flow] = due
        if len(self._last_due) > 4 * MAX_HELD:  # bound the memory of flows
            self._last_due = {flow: due}
        heapq.heappush(self._held, (due, self._sequence, packet))
        self._sequence += 1

    def next_due(self) -> float | None:
        return self._held[0][0] if self._held else None

    def due(self, now: float) -> list[bytes]:
        """The packets whose time has come, in due order."""
        out = []
        while self._held and self._held[0][0] <= now:
            out.append(heapq.heappop(self._held)[2])
        return out


def run(fd: int, delayer: Delayer, stop: list[bool]) -> None:
    while not stop[0]:
        now = time.monotonic()
        for packet in delayer.due(now):
            try:
                os.write(fd, packet)
                delayer.packets += 1
                delayer.bytes += len(packet)
            except OSError:  # e.g. no route any more: the packet is lost
                delayer.dropped += 1
        upcoming = delayer.next_due()
        timeout = 0.5 if upcoming is None else max(0.0, upcoming - time.monotonic())
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
        except InterruptedError:
            continue
        if not readable:
            continue
        now = time.monotonic()
        for _ in range(1024):  # drain what is there, then look at the clock again
            try:
                packet = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                break
            except OSError:
                stop[0] = True
                break
            delayer.arrived(packet, now)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="dly0")
    parser.add_argument("--delay", type=float, required=True, help="one-way seconds")
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    delayer = Delayer(args.delay, args.jitter, args.loss, random.Random(args.seed))
    fd = open_tun(args.name)
    stop = [False]

    def on_signal(_signum: int, _frame: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"ready {args.name}", flush=True)
    try:
        run(fd, delayer, stop)
    finally:
        os.close(fd)
        print(f"stats packets={delayer.packets} bytes={delayer.bytes} dropped={delayer.dropped}",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
