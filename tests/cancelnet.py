"""A trio cancellation that escapes a test fails it; pytest-trio 0.8 reports a pass.

pytest-trio runs each test inside a nursery whose cancel scope it cancels on
the way out *before* that nursery exits. A trio ``Cancelled`` (or a group of
nothing but ``Cancelled``) leaving the test function is therefore absorbed
there, and the test is reported PASSED although its asserts never ran.

That happens whenever a nursery or cancel scope the test body ran in was
cancelled and then left without catching its own cancellation: a library
service whose task failed (py-libp2p 0.8.1's host, before ``running_host``
raised ``HostFailed``), a context manager that enters a nursery by hand, a
helper that swallows the failing task's error on its way out.

This plugin (loaded by ``tests/conftest.py``) wraps every async test
function, and Hypothesis' inner test of an async Hypothesis test, before
pytest-trio turns it into a ``trio.run``. If such a cancellation leaves the
test while nothing outside the test cancelled it, the test fails with
:class:`EscapedCancellation`, chained to the cancellation so the report shows
where it was delivered and which task's failure caused it. When pytest-trio
itself cancels the test (a trio fixture crashed), the task's effective
deadline is ``-inf`` and the cancellation passes on untouched, so pytest-trio
reports the fixture's error as before. ``tests/unit/test_cancelnet.py`` runs
pytest on small files to check both.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio


class EscapedCancellation(AssertionError):
    """A trio cancellation left a test that nothing outside the test had cancelled."""


def only_cancelled(exc: BaseException) -> bool:
    """True for a ``Cancelled``, or a (nested) group of nothing but ``Cancelled``."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(only_cancelled(inner) for inner in exc.exceptions)
    return False


def guard_cancellation(test: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``test`` (an async test function) with escaped cancellations turned into failures."""

    @functools.wraps(test)
    async def guarded(**kwargs: Any) -> Any:
        try:
            return await test(**kwargs)
        except BaseException as exc:
            if only_cancelled(exc) and trio.current_effective_deadline() != -math.inf:
                raise EscapedCancellation(
                    f"{test.__name__} ended on a trio cancellation that nothing outside it asked for "
                    f"({exc!r}): a nursery or cancel scope it ran in was cancelled (one of its tasks "
                    "failed, or a library's service stopped) and the error was lost on the way out. "
                    "The test did not run to its end; the cancellation's traceback is above."
                ) from exc
            raise

    guarded._strangers_guarded = True  # type: ignore[attr-defined]
    return guarded


def _needs_guard(function: object) -> bool:
    return inspect.iscoroutinefunction(function) and not getattr(function, "_strangers_guarded", False)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # tryfirst: runs before pytest-trio's hook wraps item.obj (or the inner test) into trio.run.
    if item.get_closest_marker("trio") is not None:
        test = item.obj  # type: ignore[attr-defined]
        hypothesis = getattr(test, "hypothesis", None)
        if hypothesis is not None:
            if _needs_guard(hypothesis.inner_test):
                hypothesis.inner_test = guard_cancellation(hypothesis.inner_test)
        elif _needs_guard(test):
            item.obj = guard_cancellation(test)  # type: ignore[attr-defined]
    yield
