"""Churn, end to end: a third of the DHT servers SIGKILLed while pairs search.

The small version of ``bench/churn.py`` (20 servers, 8 pairs): real
``strangers`` processes on loopback. Among the killed servers are every
bootstrap peer of one waiter (it recovers through its routing table) and one
bootstrap peer of each joiner. Every pair must match, and no chat message may
be lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from churn import run_churn  # noqa: E402

pytestmark = [pytest.mark.e2e]


def test_every_pair_matches_and_no_message_is_lost_when_a_third_of_the_servers_die():
    result = run_churn(servers=8, pairs=2, kill=0.3, messages=10, seed=4)
    assert result["killed"] >= 2
    assert result["matched"] == result["pairs"] == 2, result
    assert result["wrong_partner"] == 0, result
    assert result["messages_lost"] == 0 and result["all_in_order"], result
