"""Shared wording for the py-libp2p canaries (``test_canary_*.py``).

A canary checks one thing ``strangers.node.libp2p`` relies on in py-libp2p
0.8.1: a private name, an attribute we overwrite, a method we patch, or a
library bug we work around. When one fails, the library changed under the
adapter: read the message, then fix the adapter (and its row in the table of
``node/libp2p/__init__.py``) before trusting anything else.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable

LIBP2P_VERSION = importlib.metadata.version("libp2p")


def changed(patch: str, detail: str) -> str:
    """The message of a failed canary: which patch, what changed, what to do."""
    return (
        f"py-libp2p changed under strangers.node.libp2p ({patch}): {detail}. "
        f"Written against py-libp2p 0.8.1; installed: {LIBP2P_VERSION}. "
        "Fix the adapter and its row in node/libp2p/__init__.py."
    )


def source_of(function: Callable[..., object]) -> str:
    """The source of a library function (its code, to find the lines we rely on)."""
    return inspect.getsource(function)


def parameters_of(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)
