"""End to end, issue 11's delivery check: a lobby of 6 processes, 2 more in another lobby.

Each of the 8 sends 20 messages at 10 msg/s (``bench/lobby.py`` does the
driving and counting, with its default settings); every member of the 6
must receive >= 99 % of the other 5's messages, each once, and nothing from
the other lobby (nor they from it). The latency is printed, not asserted
(it measures the machine's load as much as the lobby: docs/performance.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from lobby import run_lobby  # noqa: E402

pytestmark = pytest.mark.e2e


def test_six_members_get_everything_once_and_two_others_nothing():
    figures = run_lobby(nodes=6, others=2, messages=20, rate=10.0)
    print("lobby of 6 + 2:", figures)
    assert figures["delivery_min"] >= 0.99
    assert figures["duplicates"] == 0
    assert figures["leaks"] == 0
