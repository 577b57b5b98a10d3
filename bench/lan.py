"""mDNS on vs ``--no-mdns`` on a network of ten local strangers nodes (prints JSON).

Everything runs inside a fresh network namespace whose only interface is
``lo`` (mDNS multicast and every dial stay inside it); needs root and
iproute2. Ten ``serve`` nodes with default settings (mDNS on) form the
network; then, for each mode (default settings first, ``--no-mdns`` beside
it, rounds interleaved):

* cold start: spawn of a ``chat`` node -> its ``ready`` event;
* time to match a waiting stranger: a stranger waits (``advertised``), a
  second one starts; its ``ready`` -> ``matched`` (and spawn -> ``matched``).

    sudo .venv/bin/python bench/lan.py [--rounds 7] [--nodes 10] [--strangers PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import strangers.testing  # noqa: E402
from strangers.testing import Strangers  # noqa: E402


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), "median": round(statistics.median(ordered), 4),
            "min": round(ordered[0], 4), "max": round(ordered[-1], 4)}


@contextmanager
def namespace():
    name = f"strangers-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                    ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, capture_output=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def start_network(prefix: list[str], size: int) -> tuple[list[Strangers], list[str]]:
    nodes: list[Strangers] = []
    addrs: list[str] = []
    for index in range(size):
        args = ["serve", "--json"]
        args += ["--no-bootstrap"] if index == 0 else [a for addr in addrs[-3:] for a in ("--bootstrap", addr)]
        node = Strangers(*args, prefix=prefix)
        nodes.append(node)
        addrs.append(node.wait_for("ready", timeout=60)["addrs"][0])
    return nodes, addrs


def chat(prefix: list[str], boot: str, interest: str, mdns: bool) -> Strangers:
    args = ["chat", "--json", "--bootstrap", boot, "-i", interest, "--interests-only"]
    return Strangers(*args, *([] if mdns else ["--no-mdns"]), prefix=prefix)


def cold_start(prefix: list[str], boot: str, mdns: bool) -> float:
    start = time.perf_counter()
    node = chat(prefix, boot, f"cold-{uuid.uuid4().hex[:8]}", mdns)
    try:
        node.wait_for("ready", timeout=30)
        return time.perf_counter() - start
    finally:
        node.stop()


def match_waiting(prefix: list[str], addrs: list[str], index: int, mdns: bool) -> tuple[float, float]:
    interest = f"lan-{uuid.uuid4().hex[:8]}"
    waiting = chat(prefix, addrs[index % len(addrs)], interest, mdns)
    joiner = None
    try:
        waiting.wait_for("advertised", timeout=30)
        launched = time.perf_counter()
        joiner = chat(prefix, addrs[(index + 5) % len(addrs)], interest, mdns)
        joiner.wait_for("ready", timeout=30)
        ready_at = time.perf_counter()
        joiner.wait_for("matched", timeout=30)
        matched_at = time.perf_counter()
        return matched_at - ready_at, matched_at - launched
    finally:
        waiting.stop()
        if joiner is not None:
            joiner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--strangers", help="the strangers executable to run (default: this install's)")
    options = parser.parse_args()
    if options.strangers:
        strangers.testing.strangers_command = lambda: [options.strangers]  # type: ignore[assignment]
    modes = {"default": True, "no_mdns": False}
    cold: dict[str, list[float]] = {mode: [] for mode in modes}
    ready_to_match: dict[str, list[float]] = {mode: [] for mode in modes}
    launch_to_match: dict[str, list[float]] = {mode: [] for mode in modes}
    with namespace() as prefix:
        nodes, addrs = start_network(prefix, options.nodes)
        try:
            time.sleep(2)  # let the network settle (routing tables, mDNS announcements)
            for index in range(options.rounds):
                for mode, mdns in modes.items():
                    cold[mode].append(cold_start(prefix, addrs[index % len(addrs)], mdns))
                    after_ready, after_launch = match_waiting(prefix, addrs, index, mdns)
                    ready_to_match[mode].append(after_ready)
                    launch_to_match[mode].append(after_launch)
        finally:
            for node in nodes:
                node.stop()
    result = {
        "network": f"{options.nodes} serve nodes (mDNS on) in a fresh netns, loopback only",
        "strangers": strangers.testing.strangers_command(),
        "rounds": options.rounds,
        "cold_start_s": {mode: summary(values) for mode, values in cold.items()},
        "ready_to_matched_s": {mode: summary(values) for mode, values in ready_to_match.items()},
        "launch_to_matched_s": {mode: summary(values) for mode, values in launch_to_match.items()},
    }
    for key in ("cold_start_s", "ready_to_matched_s", "launch_to_matched_s"):
        base = result[key]["no_mdns"]["median"]
        result[key]["default_vs_no_mdns"] = round(result[key]["default"]["median"] / base, 3) if base else None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
