"""Benchmarks of strangers on a loopback network of real processes.

    python bench/loopback.py [--nodes 10] [--rounds 10] [--messages 200] [--quick]

Every figure is printed beside raw TCP loopback measured in the same run
(these machines are noisy: compare ratios, not absolute times). Prints a
table on stderr and one JSON object on stdout. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
import uuid

from homes import Homes

from strangers.testing import LOOPBACK, Strangers, chat

MIB = 1024 * 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p90": percentile(values, 0.9),
            "p99": percentile(values, 0.99), "n": len(values)}


# -- baseline -------------------------------------------------------------------


def tcp_loopback_rtt(count: int = 2000, size: int = 64) -> dict:
    """Round trip of a small message over a raw TCP loopback socket (Python, no libp2p)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo() -> None:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * size
    rtts = []
    for _ in range(count):
        start = time.perf_counter()
        client.sendall(payload)
        got = 0
        while got < size:
            got += len(client.recv(65536))
        rtts.append(time.perf_counter() - start)
    client.close()
    server.close()
    return summary(rtts)


def tcp_connect_time(count: int = 200) -> dict:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        conn = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        times.append(time.perf_counter() - start)
        conn.close()
        peer.close()
    server.close()
    return summary(times)


# -- process helpers --------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_network(size: int) -> tuple[list[Strangers], list[str]]:
    """``size`` serve processes; each bootstraps through up to 3 earlier ones."""
    nodes: list[Strangers] = []
    addrs: list[str] = []
    for index in range(size):
        args = ["serve", "--json", "--listen", LOOPBACK, "--no-mdns"]
        if index == 0:
            args.append("--no-bootstrap")
        for addr in addrs[-3:]:
            args += ["--bootstrap", addr]
        node = Strangers(*args)
        nodes.append(node)
        addrs.append(node.wait_for("ready", timeout=60)["addrs"][0])
    return nodes, addrs


def stop_all(procs: list[Strangers]) -> None:
    for proc in procs:
        proc.stop()


# -- scenarios ----------------------------------------------------------------------


def time_to_match_waiting(addrs: list[str], rounds: int) -> tuple[dict, dict]:
    """One stranger waits (advertised); a second joins: its ready -> matched."""
    times, launch, lookups, messages = [], [], [], []
    for index in range(rounds):
        interest = f"bench-{uuid.uuid4().hex[:8]}"
        waiting = chat(addrs[index % len(addrs)], "-i", interest, "--interests-only")
        waiting.wait_for("advertised", timeout=30)
        launched = time.perf_counter()
        joiner = chat(addrs[(index + 5) % len(addrs)], "-i", interest, "--interests-only")
        joiner.wait_for("ready", timeout=30)
        ready_at = time.perf_counter()
        joiner.wait_for("matched", timeout=30)
        matched_at = time.perf_counter()
        waiting.wait_for("matched", timeout=30)
        times.append(matched_at - ready_at)
        launch.append(matched_at - launched)
        joiner.send({"cmd": "status"})
        status = joiner.wait_for("status", timeout=10)
        lookups.append(status["lookups"])
        messages.append(status["dht_messages"])
        stop_all([waiting, joiner])
    return summary(times), {"launch_to_matched": summary(launch),
                            "lookups_per_match": statistics.mean(lookups),
                            "dht_messages_per_match": statistics.mean(messages)}


def time_to_match_together(addrs: list[str], rounds: int) -> dict:
    """Two strangers launched at the same moment on a fresh interest."""
    times, successes = [], 0
    for index in range(rounds):
        interest = f"bench-{uuid.uuid4().hex[:8]}"
        launched = time.perf_counter()
        a = chat(addrs[index % len(addrs)], "-i", interest, "--interests-only")
        b = chat(addrs[(index + 3) % len(addrs)], "-i", interest, "--interests-only")
        try:
            a.wait_for("ready", timeout=30)
            b.wait_for("ready", timeout=30)
            ready = time.perf_counter()
            a.wait_for("matched", timeout=10)
            b.wait_for("matched", timeout=10)
            elapsed = time.perf_counter() - launched
            times.append(elapsed)
            successes += (time.perf_counter() - ready) <= 3.0
        except AssertionError:
            pass
        stop_all([a, b])
    return {"launch_to_matched": summary(times) if times else None,
            "matched_within_3s_of_ready": successes / rounds}


def chat_round_trip(addrs: list[str], messages: int) -> dict:
    interest = f"bench-{uuid.uuid4().hex[:8]}"
    a = chat(addrs[0], "-i", interest, "--interests-only")
    b = chat(addrs[1 % len(addrs)], "-i", interest, "--interests-only")
    a.wait_for("matched", timeout=30)
    b.wait_for("matched", timeout=30)
    rtts = []
    for index in range(messages):
        start = time.perf_counter()
        a.send({"cmd": "send", "text": f"ping {index}"})
        a.wait_for("delivered", timeout=10)
        rtts.append(time.perf_counter() - start)
    # 1 MiB of text in 16 KiB messages, pipelined, until the last receipt
    chunk = "y" * 16000
    count = MIB // len(chunk) + 1
    start = time.perf_counter()
    for _ in range(count):
        a.send({"cmd": "send", "text": chunk})
    for _ in range(count):
        a.wait_for("delivered", timeout=60)
    transfer = time.perf_counter() - start
    result = {"rtt": summary(rtts), "mib_transfer_seconds": transfer,
              "rss_mib_per_chat_process": statistics.mean([rss_mib(a.proc.pid), rss_mib(b.proc.pid)])}
    stop_all([a, b])
    return result


def crowd(addrs: list[str], people: int = 50, interests: int = 5, seconds: float = 120.0,
          homes=None, returning: bool = True) -> dict:
    """``people`` strangers on ``interests`` interests, all launched within a second.

    ``homes`` (``bench/homes.py``): each stranger its own data directory, a
    returning user's (``returning``: an identity pre-minted in it) or a first
    launch's; without it they share the caller's (all but one then mint).

    ``matched``: strangers whose ``matched`` came within ``seconds`` of the
    launch. Double and asymmetric matches are counted on every event of every
    process (read to the end), so a partner whose event came after the
    deadline is not taken for an asymmetric match; ``one_sided``: a stranger
    whose partner never said ``matched`` (with anyone) by the end."""
    tag = uuid.uuid4().hex[:6]
    launched = time.perf_counter()
    crowd_procs = []
    for index in range(people):
        crowd_procs.append(chat(addrs[index % len(addrs)], "-i", f"crowd-{tag}-{index % interests}",
                                "--interests-only",
                                env=homes.env(returning) if homes is not None else None))
        time.sleep(1.0 / people)
    partners: dict[str, str] = {}
    ids: dict[Strangers, str] = {}
    deadline = launched + seconds
    unmatched = 0
    for proc in crowd_procs:
        try:
            ids[proc] = proc.wait_for("ready", timeout=max(1.0, deadline - time.perf_counter()))["peer_id"]
            match = proc.wait_for("matched", timeout=max(1.0, deadline - time.perf_counter()))
            partners[ids[proc]] = match["peer_id"]
        except AssertionError:
            unmatched += 1
    all_matched = time.perf_counter() - launched
    time.sleep(1.0)  # let any second, illegal match show up
    double = 0
    every: dict[str, str] = {}  # first partner of each stranger, whenever it came
    for proc in crowd_procs:
        while proc._pull(0.05):  # every event that arrived
            pass
        me = next((e["peer_id"] for e in proc.events if e.get("event") == "ready"), None)
        matches = [e["peer_id"] for e in proc.events if e.get("event") == "matched"]
        double += max(0, len(matches) - 1)
        if me is not None and matches:
            every[me] = matches[0]
    asymmetric = sum(1 for me, other in every.items() if other in every and every[other] != me)
    one_sided = sum(1 for other in every.values() if other not in every)
    stop_all(crowd_procs)
    # where the time goes: seconds from launch to each process's ready and matched
    start = time.monotonic() - (time.perf_counter() - launched)
    ready = sorted(t - start for p in crowd_procs if (t := p.arrival_of("ready")) is not None)
    matched = sorted(t - start for p in crowd_procs if (t := p.arrival_of("matched")) is not None)
    after_ready = sorted(m - r for p in crowd_procs
                         if (r := p.arrival_of("ready")) is not None
                         and (m := p.arrival_of("matched")) is not None)
    advertised = sorted(a - r for p in crowd_procs
                        if (r := p.arrival_of("ready")) is not None
                        and (a := p.arrival_of("advertised")) is not None)
    warnings = sorted({e.get("message", "") for p in crowd_procs for e in p.events
                       if e.get("event") == "warning"})
    return {"people": people, "interests": interests, "matched": len(partners),
            "unmatched": unmatched, "seconds_until_all_matched": all_matched if not unmatched else None,
            "matched_by_end": len(every), "seconds": seconds,
            "double_matches": double, "asymmetric_matches": asymmetric, "one_sided_matches": one_sided,
            "launch_to_ready": summary(ready) | {"last": ready[-1]} if ready else None,
            "launch_to_matched": summary(matched) | {"last": matched[-1]} if matched else None,
            "ready_to_matched": summary(after_ready) | {"max": after_ready[-1]} if after_ready else None,
            "ready_to_advertised": summary(advertised) | {"max": advertised[-1]} if advertised else None,
            "warnings": warnings}


def cold_start(rounds: int = 5) -> dict:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        node = Strangers("chat", "--json", "--listen", LOOPBACK, "--no-mdns", "--no-bootstrap")
        node.wait_for("ready", timeout=30)
        times.append(time.perf_counter() - start)
        node.stop()
    return summary(times)


def idle_cpu(node: Strangers, seconds: float = 20.0) -> float:
    before = cpu_seconds(node.proc.pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(node.proc.pid) - before) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--no-crowd", action="store_true", help="skip the 50-stranger crowd")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.messages = 3, 50

    result: dict = {"baseline": {"tcp_loopback_rtt": tcp_loopback_rtt(),
                                 "tcp_connect": tcp_connect_time()}}
    base_rtt = result["baseline"]["tcp_loopback_rtt"]["median"]
    result["cold_start"] = cold_start()
    for size in args.nodes:
        nodes, addrs = start_network(size)
        try:
            entry: dict = {}
            waiting, extra = time_to_match_waiting(addrs, args.rounds)
            entry["match_waiting"] = waiting | extra
            entry["match_together"] = time_to_match_together(addrs, args.rounds)
            if size == args.nodes[0] and not args.no_crowd:
                people = 10 if args.quick else 50
                homes = Homes()  # returning users, each with its own directory (bench/homes.py)
                try:
                    homes.premint(people)
                    entry["crowd"] = crowd(addrs, people=people, homes=homes)
                finally:
                    homes.close()
            if size == args.nodes[0]:
                entry["chat"] = chat_round_trip(addrs, args.messages)
                entry["rss_mib_per_serve_process"] = statistics.mean(rss_mib(n.proc.pid) for n in nodes)
                entry["idle_cpu_percent_of_a_core"] = idle_cpu(nodes[-1])
            result[f"network_{size}"] = entry
        finally:
            stop_all(nodes)

    print(json.dumps(result, indent=2))
    ms = 1000
    print(f"\nraw TCP loopback RTT median: {base_rtt * ms:.3f} ms", file=sys.stderr)
    print(f"cold start (spawn -> ready) median: {result['cold_start']['median']:.2f} s", file=sys.stderr)
    for size in args.nodes:
        entry = result[f"network_{size}"]
        w = entry["match_waiting"]
        t = entry["match_together"]
        print(f"[{size} nodes] match with a waiting stranger: median {w['median'] * ms:.0f} ms, "
              f"p90 {w['p90'] * ms:.0f} ms ({w['median'] / base_rtt:.0f}x TCP RTT); "
              f"launch->matched median {w['launch_to_matched']['median']:.2f} s; "
              f"DHT lookups/match {w['lookups_per_match']:.1f}, messages/match {w['dht_messages_per_match']:.1f}",
              file=sys.stderr)
        if t["launch_to_matched"]:
            print(f"[{size} nodes] both launched together: launch->matched median "
                  f"{t['launch_to_matched']['median']:.2f} s; within 3 s of ready: "
                  f"{t['matched_within_3s_of_ready'] * 100:.0f}%", file=sys.stderr)
        if "crowd" in entry:
            c = entry["crowd"]
            print(f"[{size} nodes] crowd of {c['people']} on {c['interests']} interests: "
                  f"{c['matched']} matched, {c['unmatched']} unmatched, all matched after "
                  f"{c['seconds_until_all_matched']} s; double matches {c['double_matches']}, "
                  f"asymmetric {c['asymmetric_matches']}", file=sys.stderr)
            if c["launch_to_ready"] and c["ready_to_matched"]:
                print(f"[{size} nodes] crowd timeline: ready median {c['launch_to_ready']['median']:.1f} s "
                      f"(last {c['launch_to_ready']['last']:.1f} s); ready -> matched median "
                      f"{c['ready_to_matched']['median']:.1f} s (max {c['ready_to_matched']['max']:.1f} s)",
                      file=sys.stderr)
        if "chat" in entry:
            c = entry["chat"]
            print(f"[{size} nodes] chat RTT median {c['rtt']['median'] * ms:.2f} ms "
                  f"({c['rtt']['median'] / base_rtt:.1f}x TCP), p99 {c['rtt']['p99'] * ms:.2f} ms; "
                  f"1 MiB of text {c['mib_transfer_seconds']:.2f} s; RSS chat {c['rss_mib_per_chat_process']:.0f} MiB, "
                  f"serve {entry['rss_mib_per_serve_process']:.0f} MiB; "
          f"idle CPU {entry['idle_cpu_percent_of_a_core']:.2f}% of a core",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
