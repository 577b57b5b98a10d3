"""The suite's net (tests/cancelnet.py): a cancellation that escapes a test fails it.

Each test here runs pytest, in this process, on a small file of trio tests
and reads the outcome of every one. Without the net, pytest-trio 0.8 reports
the escaping ones as passed (``test_without_the_net_they_pass`` keeps that
fact measured, so the net can go when pytest-trio fixes it).
"""

from __future__ import annotations

import pytest

ESCAPING = '''
import trio
import pytest
from hypothesis import given, strategies

@pytest.fixture
def marker():
    return "sync fixtures still resolve"

async def test_bare_cancelled(marker):
    assert marker == "sync fixtures still resolve"
    raise trio.Cancelled._create()

async def test_group_of_cancelled():
    raise BaseExceptionGroup("only cancellations", [
        trio.Cancelled._create(), BaseExceptionGroup("nested", [trio.Cancelled._create()])])

async def test_service_task_failed():
    # A nursery entered by hand, as py-libp2p 0.8.1 runs its host: its task fails,
    # the body is cancelled, and the way out swallows the task's error.
    manager = trio.open_nursery()
    nursery = await manager.__aenter__()
    async def service():
        raise ValueError("the service died")
    nursery.start_soon(service)
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            try:
                await manager.__aexit__(None, None, None)
            except BaseException:
                pass
    assert False, "never reached"

async def test_with_autojump_clock(autojump_clock):
    await trio.sleep(3600)
    assert trio.current_time() >= 3600
    raise trio.Cancelled._create()

@given(strategies.integers())
async def test_hypothesis(number):
    raise trio.Cancelled._create()
'''

HONEST = '''
import trio
import pytest

async def test_passes(autojump_clock):
    with trio.move_on_after(10) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught

async def test_fails_on_assert():
    assert 1 == 2

async def test_task_error_still_reported():
    async def task():
        raise ValueError("a task failed")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task)
        await trio.sleep_forever()

async def test_skips():
    pytest.skip("skipped from inside trio")

@pytest.mark.xfail(strict=True)
async def test_xfails():
    assert False

@pytest.fixture
async def crashing_fixture():
    # pytest-trio cancels the test when a trio fixture's nursery fails: that
    # cancellation was asked for from outside, and the fixture's error is the report.
    async with trio.open_nursery() as nursery:
        async def task():
            await trio.sleep(0.01)
            raise KeyError("the fixture's task failed")
        nursery.start_soon(task)
        yield

async def test_cancelled_by_its_fixture(crashing_fixture):
    await trio.sleep_forever()
'''

INI = "[pytest]\ntrio_mode = true\n"


def run(pytester: pytest.Pytester, source: str, *, net: bool = True) -> pytest.RunResult:
    pytester.makeini(INI)
    pytester.makeconftest('pytest_plugins = ["cancelnet"]\n' if net else "")
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA")


def outcome_of(result: pytest.RunResult, name: str) -> str:
    for line in result.outlines:
        if line.endswith(f"test_inner.py::{name}") or f"test_inner.py::{name} " in line:
            return line.split(" ", 1)[0]
    raise AssertionError(f"no outcome for {name} in:\n" + "\n".join(result.outlines))


ESCAPING_TESTS = [
    "test_bare_cancelled",
    "test_group_of_cancelled",
    "test_service_task_failed",
    "test_with_autojump_clock",
    "test_hypothesis",
]


def test_escaping_cancellations_fail(pytester: pytest.Pytester) -> None:
    result = run(pytester, ESCAPING)
    for name in ESCAPING_TESTS:
        assert outcome_of(result, name) == "FAILED", name
    result.assert_outcomes(failed=len(ESCAPING_TESTS))
    text = result.stdout.str()
    assert text.count("EscapedCancellation") >= len(ESCAPING_TESTS)
    # The report leads to the cause: the failed task behind the cancellation.
    assert "ValueError('the service died')" in text


def test_honest_outcomes_unchanged(pytester: pytest.Pytester) -> None:
    result = run(pytester, HONEST)
    assert outcome_of(result, "test_passes") == "PASSED"
    assert outcome_of(result, "test_fails_on_assert") == "FAILED"
    assert outcome_of(result, "test_task_error_still_reported") == "FAILED"
    assert outcome_of(result, "test_xfails") == "XFAIL"
    assert outcome_of(result, "test_cancelled_by_its_fixture") == "FAILED"
    result.assert_outcomes(passed=1, failed=3, skipped=1, xfailed=1)
    text = result.stdout.str()
    assert "ValueError: a task failed" in text
    assert "KeyError" in text
    assert "EscapedCancellation" not in text


def test_without_the_net_they_pass(pytester: pytest.Pytester) -> None:
    # pytest-trio 0.8's own behaviour, the reason for the net: if this starts
    # failing, pytest-trio reports escaping cancellations itself now.
    result = run(pytester, ESCAPING, net=False)
    result.assert_outcomes(passed=len(ESCAPING_TESTS))
