"""Yamux frames leave in batches: one Noise message and one TCP segment for what is written together.

py-libp2p 0.8.1's ``Yamux._write_frame`` encrypts and sends every frame
alone, under a lock, and returns once it is on the socket: a stream's
acknowledgement, each multistream line, a request, a FIN. A node that takes
a new connection answers its peer's first flight with a dozen such frames
within a few milliseconds (its identify stream, for each of the peer's
streams an acknowledgement, the protocol echo, the answer, the FIN), each
its own TCP segment. Linux counts the congestion window in segments, and a
new connection may have 10 of them unacknowledged: the answer that
mattered, a Kademlia reply written a moment later, waited a whole round
trip for the peer's acknowledgements. Seen in a packet capture at the seed
of ``bench/run.py`` (100 ms RTT, TUN delay router): 13 small segments in
flight, the 285-byte answer sent the instant an ACK arrived, 83 ms after it
was ready; ``ready`` to ``matched`` took 7 round trips instead of 6 in one
launch of three. go-yamux writes through a buffered send loop for this
reason.

:func:`install` makes ``_write_frame`` put the frame in the connection's
outbox and return (write-behind, as a socket's own buffer does); a flusher
task in the connection's nursery sends the outbox in one write once every
task that is ready to run had its turn (:func:`_settle`: until the
scheduler has nothing else to run, at most :data:`HOLD_SECONDS` of the
event loop's CPU or :data:`MAX_YIELDS` passes). So the frames one handler writes in a row (the
echo, the answer, the FIN) and those of other streams leave together. A
frame alone leaves after two passes of the scheduler (tens of
microseconds).

What does not change:

* order: frames leave in the order ``_write_frame`` was called;
* bounded memory: a writer waits while the outbox holds more than
  :data:`HIGH_WATER` bytes;
* errors: a failed send fails every later write on the connection (the
  connection is broken; its read loop closes it);
* closing: a GO_AWAY (``Yamux.close``) waits until everything before it is
  sent, so a connection never closes over frames still in its outbox;
* cancellation (as :mod:`.securewrite`): a writer cancelled before it hands
  its frame in sends nothing; a frame handed in is sent whole.

Canaries: ``tests/adapters/test_canary_framebatch.py``.
"""

from __future__ import annotations

import copy
import logging
import time

import trio
from libp2p.stream_muxer.yamux.yamux import TYPE_GO_AWAY, Yamux
from trio._core import _run as _trio_run

logger = logging.getLogger(__name__)

HOLD_SECONDS = 0.002
"""Most CPU time of the event loop a flush waits for other writers while the process stays busy."""

MAX_YIELDS = 32
"""Scheduler passes a flush waits at most (bounds the wait under a mock clock too)."""

FLUSH_BYTES = 16 * 1024
"""An outbox this full is sent without waiting for more: its segments are full already."""

HIGH_WATER = 256 * 1024
"""Bytes an outbox holds at most before writers wait for the flusher."""

_OUTBOX = "_strangers_outbox"


class _Outbox:
    __slots__ = ("drained", "failure", "flushing", "pending")

    def __init__(self) -> None:
        self.pending = bytearray()
        self.flushing = False
        """A flusher is on its way (a task, or a writer flushing itself)."""
        self.drained = trio.Event()
        """Set (and replaced) whenever the outbox is empty again or the connection failed."""
        self.failure: BaseException | None = None


def _outbox(conn: Yamux) -> _Outbox:
    box = conn.__dict__.get(_OUTBOX)
    if box is None:
        box = conn.__dict__[_OUTBOX] = _Outbox()
    return box


def _runnable() -> int:
    """Tasks queued to run next (``trio.lowlevel.current_statistics().tasks_runnable``).

    The public call also counts the I/O backend's waiters, one by one: O(connections)
    per call, too dear for every pass of every flush on a server with thousands of
    connections. Trio's run queue answers the same question in O(1) (private:
    canary ``test_canary_framebatch.py::test_trios_run_queue_is_what_its_statistics_count``).
    """
    runner = getattr(_trio_run.GLOBAL_RUN_CONTEXT, "runner", None)
    runq = getattr(runner, "runq", None)
    if runq is None:  # trio changed: the public call, slower but right
        return trio.lowlevel.current_statistics().tasks_runnable
    return len(runq)


async def _settle(box: _Outbox) -> None:
    """Let the tasks that are ready to run write first: until two passes find none left.

    The bound is CPU time of the event loop's thread, not wall time: on a machine
    whose other processes take the cores, wall time passes while this process waits
    its turn, and a wall-clock bound then sent every frame alone again (a flaky
    ``tests/netsim/test_bursttrips.py`` under load showed it).
    """
    deadline = time.thread_time() + HOLD_SECONDS
    calm = 0
    for _ in range(MAX_YIELDS):
        await trio.lowlevel.cancel_shielded_checkpoint()
        if len(box.pending) >= FLUSH_BYTES or time.thread_time() >= deadline:
            return
        if _runnable():
            calm = 0
        else:
            calm += 1
            if calm == 2:
                return


async def _flush(conn: Yamux, box: _Outbox, *, settle: bool = True) -> None:
    """Send the outbox until it is empty (shielded: a batch taken out is sent whole)."""
    try:
        with trio.CancelScope(shield=True):
            if settle:
                await _settle(box)
            while box.pending and box.failure is None:
                data = bytes(box.pending)
                box.pending.clear()
                try:
                    await conn.secured_conn.write(data)
                except Exception as exc:  # the connection is broken: every later write says so
                    logger.debug("a batch of %d bytes could not be sent: %r", len(data), exc)
                    box.failure = exc
    finally:
        box.flushing = False
        drained, box.drained = box.drained, trio.Event()
        drained.set()


def _failed(box: _Outbox) -> BaseException:
    """The connection's write error for one more writer (a copy: tracebacks stay apart)."""
    failure = box.failure
    assert failure is not None
    try:
        again = copy.copy(failure)
    except Exception:  # an exception type copy cannot rebuild
        return failure
    again.__cause__ = failure
    return again


async def _write_frame(self: Yamux, data: bytes) -> None:
    """Replaces ``Yamux._write_frame``: the frame joins the outbox (see the module)."""
    await trio.lowlevel.checkpoint_if_cancelled()  # cancelled already: nothing handed in
    box = _outbox(self)
    if box.failure is not None:
        raise _failed(box)
    box.pending += data
    closing = len(data) > 1 and data[1] == TYPE_GO_AWAY
    if not box.flushing:
        box.flushing = True
        nursery = self._nursery
        try:
            if nursery is None or closing:
                raise RuntimeError("no flusher task: the writer flushes")
            nursery.start_soon(_flush, self, box)
        except RuntimeError:  # no nursery (not started, or closed): flush here
            await _flush(self, box, settle=not closing)
    if closing or len(box.pending) > HIGH_WATER:
        with trio.CancelScope(shield=closing):  # a close waits for what came before it
            while (box.pending or box.flushing) and box.failure is None:
                await box.drained.wait()
    if box.failure is not None and closing:
        raise _failed(box)
    await trio.lowlevel.checkpoint()


_write_frame.original = Yamux._write_frame  # type: ignore[attr-defined]


def install() -> None:
    """Batch Yamux's frame writes (process-wide, once)."""
    if Yamux._write_frame is not _write_frame:
        Yamux._write_frame = _write_frame  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to the library's one write per frame (benchmarks and canaries compare the two)."""
    Yamux._write_frame = _write_frame.original  # type: ignore[attr-defined,method-assign]


def installed() -> bool:
    return Yamux._write_frame is _write_frame


__all__ = ["FLUSH_BYTES", "HIGH_WATER", "HOLD_SECONDS", "MAX_YIELDS", "install", "installed",
           "uninstall"]
