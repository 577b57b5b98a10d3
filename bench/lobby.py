"""Lobby delivery at scale, beside the one-to-one chat (prints JSON).

Real ``strangers`` processes on loopback: one ``serve`` seed, ``--nodes``
members of one lobby and ``--others`` members of another; every member
sends ``--messages`` messages at ``--rate`` per second (all at once), and
the driver counts, per receiver, the other members' messages delivered
(ratio), duplicates, leaks between the two lobbies, latency (driver clock:
the command written -> the event read, so it includes both processes'
stdin/stdout), and the TCP bytes each node sent and received (``ss``) per
message published in its lobby, and the CPU seconds all the processes (seed
included) used from the first message sent to the last delivered.

Then the same figures for the one-to-one chat: two ``chat`` nodes, matched,
each sending ``--messages`` at ``--rate``.

    .venv/bin/python bench/lobby.py [--nodes 50] [--others 2] [--messages 20] [--rate 10]
                                    [--senders K] [--flood] [--no-chat]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from strangers.testing import LOOPBACK, Strangers, serve  # noqa: E402


def _traffic() -> dict[int, int]:
    """TCP bytes sent + received per process id, over its open sockets (``ss -tinp``).

    (``/proc/PID/io`` misses sockets: trio sends with ``send``, not ``write``.)
    """
    out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True).stdout
    totals: dict[int, int] = {}
    pid = None
    for line in out.splitlines():
        found = re.search(r"pid=(\d+)", line)
        if found:
            pid = int(found.group(1))
            continue
        if pid is not None:
            sent = re.search(r"bytes_sent:(\d+)", line)
            received = re.search(r"bytes_received:(\d+)", line)
            totals[pid] = totals.get(pid, 0) + int(sent.group(1) if sent else 0) + int(
                received.group(1) if received else 0)
            pid = None
    return totals


def _cpu_seconds(procs: list[Strangers]) -> float:
    """User + system CPU of ``procs`` so far (``/proc/PID/stat``)."""
    total = 0
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _send(proc: Strangers, obj: dict) -> None:
    proc.send(obj)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else float("nan")


def _drain(proc: Strangers) -> None:
    while proc._pull(0.0):  # noqa: SLF001 - the helper's reader queue
        pass


def _send_all(senders: list[tuple[int, Strangers]], messages: int, rate: float,
              prefix: str, command: str) -> dict[str, float]:
    """Every sender sends ``messages`` at ``rate``; returns text -> send time (monotonic)."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    for k in range(messages):
        while time.monotonic() < start + k / rate:
            time.sleep(0.002)
        for index, proc in senders:
            text = f"{prefix}{index} {k}"
            sent[text] = time.monotonic()
            _send(proc, {"cmd": "send", "text": text} if command == "send" else {})
    return sent


def _start_flooder(members: list[Strangers], interest: str) -> subprocess.Popen:
    """A flooding member (``bench/lobby_flooder.py``) connected to ``members``."""
    from strangers.discovery.lobby import lobby_topic

    addrs = []
    for proc in members:
        ready = next(e for e in proc.events if e["event"] == "ready")
        addrs.append(f"{ready['addrs'][0]}/p2p/{ready['peer_id']}")
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("lobby_flooder.py")),
         "--topic", lobby_topic(interest), "--seconds", "8", *addrs],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run_lobby(nodes: int, others: int, messages: int, rate: float, settle: float = 3.0,
              senders: int | None = None, flood: bool = False) -> dict:
    """``senders`` (default: everyone) of the ``nodes`` members talk, and the ``others``.

    ``flood``: meanwhile one more member pours ~1000 signed messages a second
    into the lobby (``bench/lobby_flooder.py``); its messages are counted
    apart (``spam_shown_max``), never as leaks.
    """
    talkers = nodes if senders is None else min(senders, nodes)
    procs: list[Strangers] = []
    server, addr = serve()
    procs.append(server)
    try:
        members = []
        for index in range(nodes + others):
            interest = "bench lobby" if index < nodes else "other lobby"
            members.append(Strangers("lobby", interest, "--json", "--listen", LOOPBACK,
                                     "--no-mdns", "--bootstrap", addr))
            procs.append(members[-1])
            time.sleep(0.05)
        started = time.monotonic()
        for proc in members:
            proc.wait_for("joined", timeout=120)
        want = min(nodes, 10)
        for proc in members[:nodes]:
            proc.wait_for(lambda e: e["event"] == "members" and e["count"] >= want, timeout=120)
        joined_s = time.monotonic() - started
        time.sleep(settle)
        for proc in members:
            _drain(proc)
        io_before = _traffic()
        cpu_before = _cpu_seconds(procs)
        seen_before = {id(p): len(p.events) for p in members}
        speaking = [(i, p) for i, p in enumerate(members) if i < talkers or i >= nodes]
        flooder = _start_flooder(members[:nodes], "bench lobby") if flood else None
        if flooder is not None:
            time.sleep(1.0)  # connected, and pouring
        sent = _send_all(speaking, messages, rate, "m", "send")
        deadline = time.monotonic() + 60
        per_node = (talkers - 1) * messages
        while time.monotonic() < deadline:
            for proc in members:
                _drain(proc)
            if all(sum(e["event"] == "lobby_message" for e in p.events[seen_before[id(p)]:])
                   >= per_node for p in members[:nodes]):
                break
            time.sleep(0.2)
        cpu_s = _cpu_seconds(procs) - cpu_before
        time.sleep(1.0)
        for proc in members:
            _drain(proc)
        io_after = _traffic()
        flood_counts = json.loads(flooder.communicate(timeout=60)[0] or "{}") if flooder else {}
        ratios, latencies, duplicates, leaks, traffic = [], [], 0, 0, []
        delivered, spam_shown = 0, []
        for index, proc in enumerate(members):
            mine = index < nodes
            got = [(e, t) for e, t in zip(proc.events[seen_before[id(proc)]:],
                                          proc.arrivals[seen_before[id(proc)]:])
                   if e["event"] == "lobby_message"]
            ids = [e["id"] for e, _t in got]
            duplicates += len(ids) - len(set(ids))
            texts = {e["text"] for e, _t in got}
            spam = {t for t in texts if t.startswith("spam ")} if flood else set()
            texts -= spam
            spam_shown.append(len(spam))
            same = {f"m{i} {k}" for i in (range(talkers) if mine else range(nodes, nodes + others))
                    if i != index for k in range(messages)}
            leaks += len(texts - same)
            delivered += len(texts & same)
            if mine:
                ratios.append(len(texts & same) / len(same))
                latencies += [t - sent[e["text"]] for e, t in got if e["text"] in same]
                published = talkers * messages
                pid = proc.proc.pid
                traffic.append((io_after.get(pid, 0) - io_before.get(pid, 0)) / published)
        return {
            "nodes": nodes, "others": others, "senders": talkers,
            "messages_per_sender": messages, "rate": rate,
            "join_s": round(joined_s, 1),
            "delivery_min": round(min(ratios), 4), "delivery_mean": round(statistics.mean(ratios), 4),
            "median_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * _quantile(latencies, 0.99), 1),
            "duplicates": duplicates, "leaks": leaks,
            "bytes_per_message_per_node": round(statistics.median(traffic)),
            "cpu_s": round(cpu_s, 2),
            "cpu_ms_per_delivery": round(1000 * cpu_s / max(1, delivered), 2),
            **({"flood_sent": flood_counts.get("sent"), "spam_shown_max": max(spam_shown),
                "flooder_connected_after": flood_counts.get("connected_after")} if flood else {}),
        }
    finally:
        for proc in procs:
            proc.stop()


def run_chat(messages: int, rate: float) -> dict:
    procs: list[Strangers] = []
    server, addr = serve()
    procs.append(server)
    try:
        pair = [Strangers("chat", "--json", "--listen", LOOPBACK, "--no-mdns", "--bootstrap",
                          addr, "-i", "bench chat") for _ in range(2)]
        procs += pair
        for proc in pair:
            proc.wait_for("matched", timeout=60)
        time.sleep(1.0)
        for proc in pair:
            _drain(proc)
        io_before = _traffic()
        seen_before = {id(p): len(p.events) for p in pair}
        sent = _send_all(list(enumerate(pair)), messages, rate, "c", "send")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for proc in pair:
                _drain(proc)
            if all(sum(e["event"] == "message" for e in p.events[seen_before[id(p)]:]) >= messages
                   for p in pair):
                break
            time.sleep(0.2)
        io_after = _traffic()
        latencies, ratios, traffic = [], [], []
        for proc in pair:
            got = [(e, t) for e, t in zip(proc.events[seen_before[id(proc)]:],
                                          proc.arrivals[seen_before[id(proc)]:])
                   if e["event"] == "message"]
            ratios.append(len({e["text"] for e, _t in got}) / messages)
            latencies += [t - sent[e["text"]] for e, t in got if e["text"] in sent]
            pid = proc.proc.pid
            traffic.append((io_after.get(pid, 0) - io_before.get(pid, 0)) / (2 * messages))
        return {"nodes": 2, "messages_per_sender": messages, "rate": rate,
                "delivery_min": round(min(ratios), 4),
                "median_ms": round(1000 * statistics.median(latencies), 1),
                "p99_ms": round(1000 * _quantile(latencies, 0.99), 1),
                "bytes_per_message_per_node": round(statistics.median(traffic))}
    finally:
        for proc in procs:
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--others", type=int, default=2)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=None,
                        help="how many of the --nodes members talk (default: all)")
    parser.add_argument("--no-chat", action="store_true", help="skip the one-to-one figures")
    parser.add_argument("--flood", action="store_true",
                        help="one more member floods the lobby (~1000 msg/s) while the others talk")
    args = parser.parse_args()
    result = {"lobby": run_lobby(args.nodes, args.others, args.messages, args.rate,
                                 senders=args.senders, flood=args.flood)}
    if not args.no_chat:
        result["chat"] = run_chat(args.messages, args.rate)
        # the machine's load weighs on both: the ratio is the lobby's own cost
        result["lobby_median_over_chat"] = round(
            result["lobby"]["median_ms"] / max(result["chat"]["median_ms"], 0.1), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
