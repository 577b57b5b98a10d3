"""Churn: a share of the DHT servers is SIGKILLed while pairs of strangers search.

    python bench/churn.py [--servers 20] [--pairs 8] [--kill 0.3] [--messages 20]

Real ``strangers`` processes on loopback. ``--servers`` serve nodes form the
DHT (the first three are everyone's bootstrap peers). Each pair shares one
interest nobody else has (``--interests-only``): the first of a pair (the
waiter) starts, announces itself; then ``--kill`` of the servers are
SIGKILLed, among them every bootstrap peer of the first waiter (it must
recover through its routing table), and the second of each pair (the joiner)
starts, with one dead bootstrap peer and two live ones. Every pair must
match with each other, and then exchange ``--messages`` texts each way, none
lost, in order. Prints one JSON object; exit status 1 if a pair failed.

``tests/e2e/test_churn.py`` runs a small version (``run_churn`` with fewer
servers and pairs).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import time
import uuid

from strangers.testing import LOOPBACK, Strangers, chat

MATCH_TIMEOUT = 60.0


def start_servers(count: int) -> tuple[list[Strangers], list[str]]:
    """``count`` serve nodes in three waves (one, two, the rest), each wave
    bootstrapping through every node of the waves before it: three start-up
    times instead of ``count``."""
    nodes: list[Strangers] = []
    addrs: list[str] = []
    waves = [range(0, min(1, count)), range(1, min(3, count)), range(3, count)]
    for wave in waves:
        started = []
        for _index in wave:
            args = ["serve", "--json", "--listen", LOOPBACK, "--no-mdns"]
            if not addrs:
                args.append("--no-bootstrap")
            for addr in addrs[:3]:
                args += ["--bootstrap", addr]
            started.append(Strangers(*args))
        nodes.extend(started)
        addrs.extend(node.wait_for("ready", timeout=120)["addrs"][0] for node in started)
    return nodes, addrs


def _exchange(first: Strangers, second: Strangers, count: int, tag: str) -> dict:
    """``count`` texts each way at once; how many arrived, and whether in order."""
    for index in range(count):
        first.send({"cmd": "send", "text": f"{tag}-a-{index}"})
        second.send({"cmd": "send", "text": f"{tag}-b-{index}"})
    wanted = {first: [f"{tag}-b-{i}" for i in range(count)], second: [f"{tag}-a-{i}" for i in range(count)]}
    got: dict[Strangers, list[str]] = {}
    for proc, texts in wanted.items():
        try:
            proc.wait_for(lambda e, last=texts[-1]: e.get("event") == "message" and e.get("text") == last,
                          timeout=30)
        except AssertionError:
            pass
        got[proc] = [e["text"] for e in proc.events if e.get("event") == "message"
                     and str(e.get("text", "")).startswith(tag)]
    lost = sum(len(set(wanted[p]) - set(got[p])) for p in wanted)
    in_order = all(got[p] == wanted[p] for p in wanted)
    return {"lost": lost, "in_order": in_order}


def run_churn(servers: int = 20, pairs: int = 8, kill: float = 0.3, messages: int = 20,
              seed: int | None = None) -> dict:
    """The scenario above; returns the figures (``ok``: every pair matched, nothing lost)."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    procs: list[Strangers] = []
    phases: dict[str, float] = {}
    began = time.monotonic()
    try:
        server_procs, addrs = start_servers(servers)
        procs.extend(server_procs)
        phases["servers_ready"] = time.monotonic() - began
        waiters: list[Strangers] = []
        boots: list[list[int]] = []
        for pair in range(pairs):
            chosen = rng.sample(range(servers), 2)
            boots.append(chosen)
            waiter = chat([addrs[i] for i in chosen], "-i", f"churn-{tag}-{pair}", "--interests-only")
            procs.append(waiter)
            waiters.append(waiter)
        for waiter in waiters:
            waiter.wait_for("advertised", timeout=60)
        phases["waiters_advertised"] = time.monotonic() - began
        # who dies: every bootstrap peer of the first waiter, then others at random
        doomed = list(dict.fromkeys(boots[0]))
        others = [i for i in range(servers) if i not in doomed]
        rng.shuffle(others)
        doomed += others[: max(0, round(kill * servers) - len(doomed))]
        alive = [i for i in range(servers) if i not in doomed]
        killed_at = time.monotonic()
        for index in doomed:
            server_procs[index].kill()
        joiners: list[Strangers] = []
        for pair in range(pairs):
            boot = [addrs[rng.choice(doomed)]] + [addrs[i] for i in rng.sample(alive, 2)]
            joiner = chat(boot, "-i", f"churn-{tag}-{pair}", "--interests-only")
            procs.append(joiner)
            joiners.append(joiner)
        matched, seconds, wrong = 0, [], 0
        for waiter, joiner in zip(waiters, joiners, strict=True):
            try:
                left = max(1.0, killed_at + MATCH_TIMEOUT - time.monotonic())
                joiner_id = joiner.wait_for("ready", timeout=left)["peer_id"]
                left = max(1.0, killed_at + MATCH_TIMEOUT - time.monotonic())
                event = waiter.wait_for("matched", timeout=left)
                joiner.wait_for("matched", timeout=max(1.0, killed_at + MATCH_TIMEOUT - time.monotonic()))
            except AssertionError:
                continue
            if event["peer_id"] != joiner_id:
                wrong += 1
                continue
            matched += 1
            arrival = joiner.arrival_of("matched")
            if arrival is not None:
                seconds.append(arrival - killed_at)
        phases["pairs_matched"] = time.monotonic() - began
        exchanges = [_exchange(waiter, joiner, messages, f"{tag}-{pair}")
                     for pair, (waiter, joiner) in enumerate(zip(waiters, joiners, strict=True))
                     if waiter.arrival_of("matched") is not None]
        lost = sum(x["lost"] for x in exchanges)
        phases["messages_exchanged"] = time.monotonic() - began
        return {
            "phases_seconds": {name: round(value, 1) for name, value in phases.items()},
            "servers": servers, "killed": len(doomed), "pairs": pairs, "matched": matched,
            "wrong_partner": wrong,
            "seconds_to_match_after_kill": ({"median": statistics.median(seconds), "max": max(seconds)}
                                            if seconds else None),
            "messages_each_way": messages, "messages_lost": lost,
            "all_in_order": all(x["in_order"] for x in exchanges),
            "ok": matched == pairs and lost == 0 and all(x["in_order"] for x in exchanges),
        }
    finally:
        stop_all(procs)


def stop_all(procs: list[Strangers]) -> None:
    """SIGTERM everyone at once, then wait (one by one, each would wait up to 5 s)."""
    for proc in procs:
        if proc.proc.poll() is None:
            proc.thaw()
            proc.kill(signal.SIGTERM)
    for proc in procs:
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--kill", type=float, default=0.3)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    began = time.time()
    result = run_churn(args.servers, args.pairs, args.kill, args.messages, args.seed)
    result["wall_seconds"] = round(time.time() - began, 1)
    json.dump(result, sys.stdout, indent=2)
    print()
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
