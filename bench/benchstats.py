"""The pure parts of ``bench/run.py``: argument parsing, spreads, round-trip counts (stdlib only).

Tested in ``tests/unit/test_bench_stats.py``; ``run.py`` itself needs root,
namespaces and Node.js.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence


def parse_rtts(text: str) -> list[int]:
    """``"0,50,150"`` -> ``[0, 50, 150]`` (milliseconds, distinct, ascending)."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"not a round-trip time in ms: {part!r}") from None
        if not 0 <= value <= 5000:
            raise ValueError(f"round-trip time out of range (0-5000 ms): {value!r}")
        values.append(value)
    if not values:
        raise ValueError(f"no round-trip times in {text!r}")
    return sorted(set(values))


def parse_flag_sets(text: str) -> list[tuple[str, list[str]]]:
    """``"default;no-mdns=--no-mdns"`` -> ``[("default", []), ("no-mdns", ["--no-mdns"])]``.

    The default set (no extra flags) always comes first: it is what a user gets.
    A flag written ``seed:--flag`` is for the seed node only (see :func:`split_seed_flags`).
    """
    sets: list[tuple[str, list[str]]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        label, _, flags = part.partition("=")
        label = label.strip()
        if not label:
            raise ValueError(f"a flag set needs a label: {part!r}")
        sets.append((label, flags.split()))
    if not any(label == "default" and not flags for label, flags in sets):
        sets.insert(0, ("default", []))
    sets.sort(key=lambda entry: entry != ("default", []))
    return sets


def split_seed_flags(flags: list[str]) -> tuple[list[str], list[str]]:
    """``["--no-mdns", "seed:--no-relay"]`` -> ``(["--no-mdns"], ["--no-relay"])``:
    the chat nodes' flags, and the seed's."""
    peers = [flag for flag in flags if not flag.startswith("seed:")]
    seed = [flag.removeprefix("seed:") for flag in flags if flag.startswith("seed:")]
    if any(not flag for flag in seed):
        raise ValueError(f"an empty seed flag in {flags!r}")
    return peers, seed


def spread(values: Iterable[float], digits: int = 3) -> dict:
    """Median, min, max and count (a few runs: no percentiles pretend otherwise)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {"median": round(statistics.median(ordered), digits), "min": round(ordered[0], digits),
            "max": round(ordered[-1], digits), "n": len(ordered)}


def show(entry: dict, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    """``1.73 s [1.69-2.33] (3)`` for a :func:`spread`; ``-`` when empty."""
    if not entry.get("n"):
        return "-"
    return (f"{entry['median'] * scale:.{digits}f} {unit} "
            f"[{entry['min'] * scale:.{digits}f}-{entry['max'] * scale:.{digits}f}] ({entry['n']})")


def round_trips(seconds: float, rtt: float) -> float | None:
    """``seconds`` in round trips of ``rtt`` (None at 0 ms: nothing to count)."""
    return seconds / rtt if rtt > 0 else None


def fit_round_trips(points: Sequence[tuple[float, float]]) -> dict | None:
    """Least-squares ``seconds = fixed + round_trips * rtt`` over ``(rtt, seconds)`` points.

    The slope counts the round trips an operation waits for (CPU and pacing
    fall into ``fixed``); needs at least two distinct round-trip times.
    """
    if len({rtt for rtt, _ in points}) < 2:
        return None
    mean_x = statistics.fmean(rtt for rtt, _ in points)
    mean_y = statistics.fmean(seconds for _, seconds in points)
    sxx = sum((rtt - mean_x) ** 2 for rtt, _ in points)
    sxy = sum((rtt - mean_x) * (seconds - mean_y) for rtt, seconds in points)
    slope = sxy / sxx
    return {"round_trips": round(slope, 2), "fixed_seconds": round(mean_y - slope * mean_x, 3),
            "points": len(points)}
