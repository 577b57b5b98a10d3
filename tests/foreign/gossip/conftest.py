"""The js-libp2p lobby peer: ``npm ci`` here when its node_modules are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def js_lobby_peer() -> Path:
    """The path of lobby.mjs, its dependencies installed (skips without Node.js/npm)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the js-libp2p peer")
    if not (HERE / "node_modules" / "@libp2p" / "gossipsub").is_dir():
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"npm ci failed (no registry?): {result.stderr[-500:]}")
    return HERE / "lobby.mjs"


@pytest.fixture
def procs():
    """Collects Strangers processes and stops them all after the test."""
    started: list = []
    yield started
    for proc in started:
        proc.stop()
