"""Every test runs with its own data directory (``$STRANGERS_HOME``), never the user's.

Nodes and the ``strangers`` executables the end-to-end tests start inherit it,
so blocks, list subscriptions and caches written by one test cannot leak into
another, nor into the real home of whoever runs the tests.
"""

import pytest


@pytest.fixture(autouse=True)
def strangers_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("strangers-home")
    monkeypatch.setenv("STRANGERS_HOME", str(home))
    # The price on identities (crypto/pow.py) off for the suite: a few CPU-seconds per
    # node would cost hours. Tests of the price set their own bits (tests/unit/node/test_safety.py).
    monkeypatch.setenv("STRANGERS_POW_BITS", "0")
    return home


# Hypothesis: no per-example deadline anywhere. These machines are shared and
# noisy: a deadline turns a slow moment into a failure that says nothing about
# the code (tests/fuzz sets its own profiles on top of this default).
from hypothesis import settings  # noqa: E402

settings.register_profile("strangers", deadline=None)
settings.load_profile("strangers")


# A cancellation that escapes a test is a failure, not a pass.
#
# pytest-trio 0.8 runs a test inside a nursery whose cancel scope it cancels on
# the way out *before* the nursery exits, so a trio ``Cancelled`` (or a group of
# nothing but ``Cancelled``) leaving the test function is absorbed there and the
# test is reported PASSED, though its asserts never ran. That happens whenever a
# nursery or cancel scope the test body ran in was cancelled and then left
# without catching its own cancellation: a library service whose task failed
# (py-libp2p 0.8.1's host before ``HostFailed``), a context manager that enters
# a nursery by hand, a helper that swallows the failing task's error. Each test
# function is wrapped: if such a cancellation leaves it while nothing outside the
# test cancelled it (pytest-trio cancels the test when a fixture crashed; then
# ``current_effective_deadline()`` is ``-inf`` and the cancellation passes on),
# the test fails with EscapedCancellation, chained to the Cancelled so the
# traceback shows where it was delivered. tests/unit/test_conftest_net.py checks it.
import functools  # noqa: E402
import inspect  # noqa: E402
import math  # noqa: E402

import trio  # noqa: E402


class EscapedCancellation(AssertionError):
    """A trio cancellation left a test that nothing outside it had cancelled."""


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(inner) for inner in exc.exceptions)
    return False


def guard_cancellation(test):
    """``test`` (an async test function) with escaped cancellations turned into failures."""

    @functools.wraps(test)
    async def guarded(**kwargs):
        try:
            return await test(**kwargs)
        except BaseException as exc:
            if _only_cancelled(exc) and trio.current_effective_deadline() != -math.inf:
                raise EscapedCancellation(
                    f"{test.__name__} ended on a trio cancellation that nothing outside it asked for "
                    f"({exc!r}): a nursery or cancel scope it ran in was cancelled (one of its tasks "
                    "failed, or a library service stopped) and the error was lost; the test did not "
                    "run to its end. The traceback of the cancellation follows above."
                ) from exc
            raise

    guarded._strangers_guarded = True  # type: ignore[attr-defined]
    return guarded


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    # Before pytest-trio's own hook wraps item.obj (or Hypothesis' inner test) into trio.run.
    if item.get_closest_marker("trio") is not None:
        hypothesis = getattr(item.obj, "hypothesis", None)
        if hypothesis is not None:
            inner = hypothesis.inner_test
            if inspect.iscoroutinefunction(inner) and not getattr(inner, "_strangers_guarded", False):
                hypothesis.inner_test = guard_cancellation(inner)
        elif inspect.iscoroutinefunction(item.obj) and not getattr(item.obj, "_strangers_guarded", False):
            item.obj = guard_cancellation(item.obj)
    yield
