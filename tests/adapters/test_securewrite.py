"""``securewrite``'s own rules, on fake sessions: nothing begun when cancelled before, and
a write that cannot finish closes the connection instead of hanging or half-writing."""

from __future__ import annotations

import pytest
import trio

from strangers.node.libp2p import securewrite


class _Session:
    def __init__(self) -> None:
        self.closed = False
        self.written: list[bytes] = []

    async def close(self) -> None:
        self.closed = True


async def _record(session: _Session, data: bytes) -> None:
    await trio.sleep(1)  # the socket takes its time: a cancellation arrives meanwhile
    session.written.append(data)


async def test_a_write_cancelled_before_it_began_sends_nothing() -> None:
    session = _Session()
    with trio.CancelScope() as scope:
        scope.cancel()
        await securewrite._atomic(_record)(session, b"x")
    assert scope.cancelled_caught and session.written == [] and not session.closed


async def test_a_write_cancelled_half_way_finishes_then_the_cancellation_lands(autojump_clock) -> None:
    session = _Session()
    with trio.move_on_after(0.5) as scope:
        await securewrite._atomic(_record)(session, b"x")
        await trio.sleep(10)  # never reached in full: the cancellation arrives at once
    assert scope.cancelled_caught and session.written == [b"x"] and not session.closed
    assert trio.current_time() == pytest.approx(1.0)


async def test_a_write_that_cannot_finish_closes_the_connection(autojump_clock) -> None:
    async def stuck(session: _Session, data: bytes) -> None:
        await trio.sleep_forever()

    session = _Session()
    with pytest.raises(securewrite.WriteAbandoned):
        await securewrite._atomic(stuck)(session, b"x")
    assert session.closed
    assert trio.current_time() == pytest.approx(securewrite.WRITE_TIMEOUT)
