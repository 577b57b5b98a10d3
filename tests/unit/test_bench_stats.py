"""The pure parts of ``bench/run.py`` (``bench/benchstats.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import benchstats  # noqa: E402  (bench/ is not a package)


def test_parse_rtts() -> None:
    assert benchstats.parse_rtts("150, 0,50,50") == [0, 50, 150]
    for bad in ("", "fast", "-5", "9000"):
        with pytest.raises(ValueError):
            benchstats.parse_rtts(bad)


def test_the_default_flags_always_run_first() -> None:
    assert benchstats.parse_flag_sets("no-mdns=--no-mdns") == [
        ("default", []), ("no-mdns", ["--no-mdns"])]
    assert benchstats.parse_flag_sets("fixed=--x --y;default") == [
        ("default", []), ("fixed", ["--x", "--y"])]
    with pytest.raises(ValueError):
        benchstats.parse_flag_sets("=--no-mdns")


def test_spread_and_show() -> None:
    entry = benchstats.spread([3.0, 1.0, 2.0])
    assert entry == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert benchstats.show(entry) == "2.00 s [1.00-3.00] (3)"
    assert benchstats.show(benchstats.spread([0.07]), "ms", 1000, 0) == "70 ms [70-70] (1)"
    assert benchstats.spread([]) == {"n": 0} and benchstats.show({"n": 0}) == "-"


def test_round_trips_are_counted_from_absolute_times() -> None:
    assert benchstats.round_trips(1.5, 0.1) == pytest.approx(15)
    assert benchstats.round_trips(0.2, 0.0) is None


def test_the_fit_separates_round_trips_from_fixed_costs() -> None:
    points = [(rtt, 0.4 + 13 * rtt) for rtt in (0.0, 0.05, 0.15) for _ in range(3)]
    fit = benchstats.fit_round_trips(points)
    assert fit == {"round_trips": 13.0, "fixed_seconds": 0.4, "points": 9}
    assert benchstats.fit_round_trips([(0.05, 1.0), (0.05, 2.0)]) is None


def test_seed_flags_are_split_from_the_chat_nodes_flags() -> None:
    assert benchstats.split_seed_flags(["--no-mdns", "seed:--no-relay"]) == (
        ["--no-mdns"], ["--no-relay"])
    assert benchstats.split_seed_flags([]) == ([], [])
    with pytest.raises(ValueError):
        benchstats.split_seed_flags(["seed:"])
    assert benchstats.parse_flag_sets("direct=seed:--no-relay") == [
        ("default", []), ("direct", ["seed:--no-relay"])]
