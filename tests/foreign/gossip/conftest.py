"""The js-libp2p lobby peer: ``npm ci`` here unless its node_modules match the lock file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/foreign: the shared npm installer

import npmpeers  # noqa: E402


@pytest.fixture(scope="session")
def js_lobby_peer() -> Path:
    """The path of lobby.mjs, its dependencies installed (skips without Node.js 20+/npm)."""
    try:
        npmpeers.install(HERE)
    except npmpeers.Unavailable as exc:
        pytest.skip(str(exc))
    return HERE / "lobby.mjs"


@pytest.fixture
def procs():
    """Collects Strangers processes and stops them all after the test."""
    started: list = []
    yield started
    for proc in started:
        proc.stop()
