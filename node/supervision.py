"""Supervision: one task's failure ends that task, never the node.

Every task a node starts (a search, a chat, a pending match's expiry, the
routing-table fill, local discovery, each stream handler) runs through
:func:`supervised` or :func:`supervised_handler`. An exception nobody
expected, including an ``ExceptionGroup`` out of a nursery (trio >= 0.25
wraps every error raised inside one), is logged with its traceback and handed
to the task's ``on_crash``, which turns it into the right outcome (an
``error`` event, a ``stranger_left``, the search started again). Cancellation
(``trio.Cancelled``, a ``BaseException``) passes through untouched, so the
node can still be stopped.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

logger = logging.getLogger(__name__)

Crash = Callable[[BaseException], Awaitable[None]]


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, groups flattened."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def describe(exc: BaseException) -> str:
    """One line for a log or an error event: the first real exception in ``exc``."""
    first = leaves(exc)[0]
    text = str(first)
    return f"{type(first).__name__}: {text}" if text else type(first).__name__


async def supervised(name: str, function: Callable[..., Awaitable[Any]], *args: Any,
                     on_crash: Crash | None = None) -> None:
    """Run ``function(*args)``; if it fails, log it and await ``on_crash(exc)``."""
    crash: BaseException | None = None
    try:
        await function(*args)
    except* Exception as group:
        crash = group.exceptions[0] if len(group.exceptions) == 1 else group
    if crash is None:
        return
    logger.error("%s failed: %s", name, describe(crash), exc_info=crash)
    if on_crash is None:
        return
    try:
        await on_crash(crash)
    except* Exception as group:  # the remedy failed too: nothing more to do than say so
        logger.error("%s: recovering failed: %s", name, describe(group), exc_info=group)


def spawn(nursery: trio.Nursery, name: str, function: Callable[..., Awaitable[Any]], *args: Any,
          on_crash: Crash | None = None) -> None:
    """Start ``function(*args)`` in ``nursery``, :func:`supervised`."""
    nursery.start_soon(functools.partial(supervised, name, function, *args, on_crash=on_crash),
                       name=name)


def supervised_handler(name: str, handler: Callable[[Any], Awaitable[None]]
                       ) -> Callable[[Any], Awaitable[None]]:
    """A libp2p stream handler that resets its stream instead of raising."""

    async def handle(stream: Any) -> None:
        async def reset(_exc: BaseException) -> None:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                try:
                    await stream.reset()
                except Exception as exc:  # the stream may be gone already
                    logger.debug("%s: reset failed: %r", name, exc)

        await supervised(name, handler, stream, on_crash=reset)

    return handle
