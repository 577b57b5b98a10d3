"""Supervision: a task's failure, groups included, ends only that task; cancellation passes."""

from __future__ import annotations

import logging

import pytest
import trio

from strangers.node.conversation import end_reason
from strangers.node.libp2p.streamio import StreamEnded
from strangers.node.supervision import describe, leaves, spawn, supervised, supervised_handler


class Boom(RuntimeError):
    pass


async def _group_of(*errors: BaseException) -> None:
    async def raise_(error: BaseException) -> None:
        raise error

    async with trio.open_nursery() as nursery:
        for error in errors:
            nursery.start_soon(raise_, error)


async def test_an_exception_group_from_a_nursery_is_caught_and_handed_over(caplog) -> None:
    crashes: list[BaseException] = []

    async def on_crash(exc: BaseException) -> None:
        crashes.append(exc)

    with caplog.at_level(logging.ERROR, logger="strangers.node.supervision"):
        await supervised("worker", _group_of, Boom("one"), on_crash=on_crash)
    assert [type(leaf) for leaf in leaves(crashes[0])] == [Boom]
    assert describe(crashes[0]) == "Boom: one"
    assert "worker failed: Boom: one" in caplog.text


async def test_a_plain_exception_is_handed_over_as_itself() -> None:
    crashes: list[BaseException] = []

    async def fail() -> None:
        raise Boom()

    async def on_crash(exc: BaseException) -> None:
        crashes.append(exc)

    await supervised("worker", fail, on_crash=on_crash)
    assert len(crashes) == 1 and isinstance(crashes[0], Boom)
    assert describe(crashes[0]) == "Boom"


async def test_several_failures_at_once_are_one_crash() -> None:
    crashes: list[BaseException] = []

    async def on_crash(exc: BaseException) -> None:
        crashes.append(exc)

    await supervised("worker", _group_of, Boom("a"), ValueError("b"), on_crash=on_crash)
    assert len(crashes) == 1
    assert sorted(type(leaf).__name__ for leaf in leaves(crashes[0])) == ["Boom", "ValueError"]


async def test_cancellation_is_not_a_crash() -> None:
    crashes: list[BaseException] = []

    async def on_crash(exc: BaseException) -> None:
        crashes.append(exc)

    with trio.move_on_after(0.01) as scope:
        await supervised("sleeper", trio.sleep_forever, on_crash=on_crash)
    assert scope.cancelled_caught and crashes == []


async def test_a_failing_remedy_is_logged_not_raised(caplog) -> None:
    async def fail() -> None:
        raise Boom("first")

    async def remedy(_exc: BaseException) -> None:
        raise ValueError("second")

    with caplog.at_level(logging.ERROR, logger="strangers.node.supervision"):
        await supervised("worker", fail, on_crash=remedy)
    assert "recovering failed: ValueError: second" in caplog.text


async def test_spawned_tasks_fail_alone() -> None:
    finished = []

    async def fail() -> None:
        raise Boom()

    async def work() -> None:
        await trio.sleep(0)
        finished.append(True)

    async with trio.open_nursery() as nursery:
        spawn(nursery, "failing", fail)
        spawn(nursery, "working", work)
    assert finished == [True]


class FakeStream:
    def __init__(self) -> None:
        self.reset_called = False

    async def reset(self) -> None:
        self.reset_called = True


async def test_a_stream_handler_that_raises_resets_its_stream() -> None:
    async def handler(stream) -> None:
        await _group_of(Boom())

    stream = FakeStream()
    await supervised_handler("test stream", handler)(stream)
    assert stream.reset_called


async def test_a_stream_handler_that_ends_normally_keeps_its_stream() -> None:
    async def handler(stream) -> None:
        return None

    stream = FakeStream()
    await supervised_handler("test stream", handler)(stream)
    assert not stream.reset_called


@pytest.mark.parametrize(("errors", "reason"), [
    ((trio.TooSlowError(),), "timeout"),
    ((StreamEnded("gone"), trio.BrokenResourceError()), "disconnected"),
    ((trio.ClosedResourceError(),), "disconnected"),
    ((trio.TooSlowError(), Boom()), "error"),
    ((Boom(),), "error"),
])
def test_a_failed_chat_is_reported_with_the_reason_of_what_failed(errors, reason) -> None:
    assert end_reason(ExceptionGroup("chat", list(errors))) == reason
    if len(errors) == 1:
        assert end_reason(errors[0]) == reason
