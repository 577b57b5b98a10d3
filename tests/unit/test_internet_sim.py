"""The calibrated internet simulation (``bench/internet_sim.py``) runs, and predicts what
the namespace benchmark measures: a broken simulation fails here, not in a later session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import netmodel  # noqa: E402  (bench/ is not a package)


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / "internet_sim.py"), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_calibration_predicts_the_round_trips_of_the_namespace_run() -> None:
    result = _run("--calibrate", "0,50,100,150", "--trials", "40", "--loss", "0")
    direct = result["direct"]
    # the joiner's ready -> matched: its first walk (1 round trip, the seed connected) and
    # the match after the lookup (dial 2, proposal 1, chat 1): bench/run.py measures 5.2
    assert direct["fit"]["round_trips"] == pytest.approx(1 + netmodel.TODAY.after_lookup())
    at_100 = next(row for row in direct["rows"] if row["rtt_ms"] == 100)
    assert at_100["matched"] == 1.0
    assert at_100["ready_to_matched"]["median"] == pytest.approx(0.5)
    assert at_100["bootstrap"]["median"] == pytest.approx(0.1 * netmodel.TODAY.connect)
    relayed = result["relayed through the seed"]["fit"]["round_trips"]
    assert relayed > direct["fit"]["round_trips"]


def test_a_quick_internet_run_matches_fresh_returning_and_warm_searchers() -> None:
    result = _run("--quick")
    searchers = {run["searcher"]: run for run in result["runs"]}
    assert set(searchers) == {"fresh", "returning", "warm"}
    # a returning user's launch starts next to its keys (ServerCache.first_tries): sooner
    assert searchers["returning"]["seconds"]["median"] < searchers["fresh"]["seconds"]["median"]
    rates = [value for key, value in _walk(result) if key == "matched"]
    assert rates and all(0.5 < rate <= 1.0 for rate in rates)


def _walk(node: object):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
