"""Time to match as a user gets it: default flags, real processes, added latency, beside Hyperswarm.

    sudo .venv/bin/python bench/run.py [--quick] [--rtts 0,50,150] [--runs 3]
                                       [--flag-sets "default;first-launch="]
                                       [--no-hyperswarm] [--give-up 60] [--side-by-side]

For each round-trip time and run, a fresh :class:`DelayRouter`
(``tests/netsim``: three hosts in network namespaces behind a router whose
TUN device holds every forwarded packet for half the RTT; TCP and UDP alike,
source addresses kept, so paths are direct and nobody looks NATed; above
0 ms, +-10 ms jitter and 1% packet loss). In it, back to back, with the same
driver and the same start event (this process launches the peer and reads
its JSON events; ``time.monotonic``):

* **strangers, default flags** (mDNS on; ``--bootstrap`` the seed, a
  ``serve`` node on host 0; ``--listen`` the host's address). Each stranger
  has its own data directory holding an identity and proof pre-minted for it
  (``next-identity.json``), as on a second launch: what a returning user has.
* **strangers, first launch** (label ``first-launch``): an empty data
  directory, as on the very first launch on a machine: the node mints its
  identity proof (protocol §5.9) before its first proposal.
* **Hyperswarm** (``bench/hyperswarm/bench.mjs``'s processes bound to the
  hosts' addresses; ``--seeds`` HyperDHT nodes on host 0, 3: HyperDHT finds
  nobody with fewer): its UDP crosses the same delay. A Hyperswarm peer joins
  the topic as soon as it reports ``ready`` (its DHT bootstrapped); a
  strangers chat node searches from launch.

Other flag sets run beside them, labelled (``"label=--flag ..."``). Two
scenarios per tool and run:

* **waiting**: one stranger waits (until ``advertised`` / ``announced``), the
  other is launched: launch -> ``ready``, ``ready`` -> ``matched``, launch ->
  ``matched``, the path (``direct`` / ``relayed``; Hyperswarm: the remote
  address), the CPU the process had used when it reported ``ready``; then the
  chat round trip (``send`` -> ``delivered``);
* **together**: both launched at the same moment: launch -> both matched.

Times are absolute, median [min-max] over ``--runs`` runs; round trips are a
time divided by the RTT, and fitted across RTTs (slope: the round trips
waited for; intercept: CPU and pacing). The run also measures what importing
the CLI and the node costs a fresh interpreter (``import_cost``), and the
load average at its start and end: on a shared machine CPU-bound phases
stretch with the load.

``--side-by-side`` adds the older comparison in a private loopback namespace
(0 ms, no router). Needs root (namespaces, ``/dev/net/tun``), iproute2;
Node.js 20+ and ``npm ci`` in ``bench/hyperswarm`` for Hyperswarm. Prints
progress and tables on stderr, one JSON object on stdout. The older loopback
suite (crowds, throughput, idle CPU) is ``bench/loopback.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "netsim"))
from benchstats import (  # noqa: E402
    fit_round_trips,
    parse_flag_sets,
    parse_rtts,
    round_trips,
    show,
    split_seed_flags,
    spread,
)
from delayproxy import PathSettings  # noqa: E402
from delayrouter import DelayRouter, NetHost, namespaces_unavailable  # noqa: E402
from homes import Minted  # noqa: E402

from strangers.testing import Strangers  # noqa: E402

HYPERSWARM = HERE / "hyperswarm" / "bench.mjs"
FIRST_LAUNCH = "first-launch"
"""The flag set label whose strangers start with an empty data directory (no identity yet)."""


class JsonProcess(Strangers):
    """Any child speaking JSON lines on stdin/stdout (a Hyperswarm peer), driven as a strangers one."""

    def __init__(self, command: list[str], prefix: list[str] | None = None) -> None:
        # Strangers' reader threads and event queue, over another command
        import queue
        import threading
        self.args = command
        self.proc = subprocess.Popen([*(prefix or []), *command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.events, self.arrivals, self.stderr_lines = [], [], []
        self._queue = queue.Queue()
        self._seen = 0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "exit"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


LOGS: Path | None = None
"""Where each waiting scenario's logs go (``--logs``)."""

MINTED = Minted(reuse=True)
"""Identities minted ahead (``bench/homes.py``), handed out in turn: minting one per launch
would cost minutes of the machine's CPU."""


# -- the tools, behind one driver ------------------------------------------------------


class StrangersTool:
    name = "strangers"

    def __init__(self, flags: list[str], env: dict[str, str] | None = None, *,
                 first_launch: bool = False, label: str = "default") -> None:
        self.flags, self.seed_flags = split_seed_flags(flags)
        self.env = env or {}
        self.first_launch = first_launch
        self.label = label
        self.homes: list[str] = []
        self._ready_homes: list[str] = []

    def prepare(self, count: int) -> None:
        """Data directories for the next ``count`` strangers, made before any clock starts.

        Each stranger gets its own directory. A returning user's (the default
        here): it holds the identity and proof that the previous run minted
        for this one (``next-identity.json``, protocol §5.9), as a second
        launch finds it. ``first_launch``: an empty directory, as on the very
        first launch on a machine (the node mints its proof before its first
        proposal).
        """
        for _ in range(count):
            home = tempfile.mkdtemp(prefix="strangers-bench-")
            self.homes.append(home)
            if not self.first_launch:
                MINTED.premint_into(Path(home))
            self._ready_homes.append(home)

    def _home_env(self) -> dict[str, str]:
        if not self._ready_homes:
            self.prepare(1)
        return {**self.env, "STRANGERS_HOME": self._ready_homes.pop(0)}

    def cleanup(self) -> None:
        for home in self.homes:
            shutil.rmtree(home, ignore_errors=True)
        self.homes.clear()
        self._ready_homes.clear()

    def seed(self, host: NetHost | None, prefix: list[str],
             earlier: list[str] = ()) -> tuple[Strangers, str]:
        """A ``serve`` node, bootstrapping through the ``earlier`` ones (the first: none)."""
        boot = [arg for addr in earlier[-3:] for arg in ("--bootstrap", addr)] or ["--no-bootstrap"]
        home = tempfile.mkdtemp(prefix="strangers-bench-seed-")
        self.homes.append(home)
        proc = Strangers("serve", "--json", *self._listen(host), *boot, *self.flags,
                         *self.seed_flags, prefix=prefix, env={**self.env, "STRANGERS_HOME": home})
        return proc, proc.wait_for("ready", timeout=60)["addrs"][0]

    def peer(self, host: NetHost | None, prefix: list[str], seed: str, topic: str) -> Strangers:
        return Strangers("chat", "--json", *self._listen(host), "--bootstrap", seed, "-i", topic,
                         "--interests-only", *self.flags, prefix=prefix, env=self._home_env())

    @staticmethod
    def _listen(host: NetHost | None) -> list[str]:
        return ["--listen", f"/ip4/{host.ip if host else '127.0.0.1'}/tcp/0"]

    def after_ready(self, proc: Strangers, topic: str) -> None:
        """Nothing to do: a chat node searches from launch."""

    def wait_listed(self, proc: Strangers, timeout: float) -> None:
        proc.wait_for("advertised", timeout=timeout)

    def matched_event(self) -> str:
        return "matched"


class HyperswarmTool:
    name = "hyperswarm"
    label = "hyperswarm"

    def prepare(self, count: int) -> None:
        """Nothing to make ahead: a Hyperswarm peer has no identity to prove."""

    def cleanup(self) -> None:
        pass

    @staticmethod
    def _host(host: NetHost | None) -> list[str]:
        return ["--host", host.ip] if host else []

    def seed(self, host: NetHost | None, prefix: list[str],
             earlier: list[dict] = ()) -> tuple[JsonProcess, dict]:
        """A HyperDHT node (``ephemeral: false``), bootstrapping through the ``earlier`` ones."""
        proc = JsonProcess(["node", str(HYPERSWARM), "--role", "dht", *self._host(host),
                            "--bootstrap", json.dumps(list(earlier[-3:]))], prefix)
        ready = proc.wait_for("ready", timeout=60)
        return proc, {"host": ready["host"], "port": ready["port"]}

    def peer(self, host: NetHost | None, prefix: list[str], seed: dict, topic: str) -> JsonProcess:
        return JsonProcess(["node", str(HYPERSWARM), "--role", "peer", *self._host(host),
                            "--bootstrap", json.dumps([seed])], prefix)

    def after_ready(self, proc: JsonProcess, topic: str, *, flush: bool = False) -> None:
        proc.send({"cmd": "join", "topic": topic, "flush": flush})

    def wait_listed(self, proc: JsonProcess, timeout: float) -> None:
        proc.wait_for("announced", timeout=timeout)

    def matched_event(self) -> str:
        return "connection"


def _topic(tool: object) -> str:
    return os.urandom(32).hex() if isinstance(tool, HyperswarmTool) else f"bench-{uuid.uuid4().hex[:8]}"


def scenario_waiting(tool, hosts: list[NetHost | None], prefixes: list[list[str]], seed,
                     *, give_up: float, messages: int) -> dict:
    """One peer waits (listed); the other is launched: times from the launch, read here."""
    topic = _topic(tool)
    procs = []
    tool.prepare(2)
    try:
        waiting = tool.peer(hosts[1], prefixes[1], seed, topic)
        procs.append(waiting)
        try:
            waiting.wait_for("ready", timeout=give_up)
            if isinstance(tool, HyperswarmTool):
                tool.after_ready(waiting, topic, flush=True)
            tool.wait_listed(waiting, timeout=give_up)
        except AssertionError:
            return {"matched": False, "failed": "the waiting peer was not listed in time"}
        launched = time.monotonic()
        joining = tool.peer(hosts[2], prefixes[2], seed, topic)
        procs.append(joining)
        try:
            joining.wait_for("ready", timeout=give_up)
            cpu_at_ready = cpu_seconds(joining.proc.pid)
            tool.after_ready(joining, topic)
            event = joining.wait_for(tool.matched_event(), timeout=give_up)
        except AssertionError:
            return {"matched": False, "failed": "the joining peer did not match in time"}
        ready = joining.arrival_of("ready")
        matched = joining.arrival_of(tool.matched_event())
        result = {"matched": True, "launch_to_ready": ready - launched,
                  "ready_to_matched": matched - ready, "launch_to_matched": matched - launched,
                  "path": event.get("path") or event.get("remote")}
        if cpu_at_ready is not None:
            result["cpu_at_ready"] = cpu_at_ready
        if isinstance(tool, StrangersTool) and messages:
            waiting.wait_for("matched", timeout=30)
            rtts = []
            for index in range(messages):
                joining.send({"cmd": "send", "text": f"message {index}"})
                sent = joining.wait_for("sent", timeout=30)
                started = time.monotonic()
                joining.wait_for(lambda e, i=sent["id"]: e.get("event") == "delivered"
                                 and e.get("id") == i, timeout=30)
                rtts.append(time.monotonic() - started)
            result["chat_rtt"] = statistics.median(rtts)
        return result
    finally:
        for proc in procs:
            proc.stop()
        if LOGS is not None:
            LOGS.mkdir(parents=True, exist_ok=True)
            for role, proc in zip(("waiting", "joiner"), procs):
                (LOGS / f"{topic[:40]}-{role}.log").write_text("".join(proc.stderr_lines))


def scenario_together(tool, hosts: list[NetHost | None], prefixes: list[list[str]], seed,
                      *, give_up: float) -> dict:
    """Both peers launched at the same moment: launch -> both matched."""
    topic = _topic(tool)
    procs = []
    tool.prepare(2)
    try:
        launched = time.monotonic()
        procs = [tool.peer(hosts[i], prefixes[i], seed, topic) for i in (1, 2)]
        try:
            for proc in procs:  # the same driver: each joins as soon as it is ready
                proc.wait_for("ready", timeout=give_up)
                tool.after_ready(proc, topic)
            for proc in procs:
                proc.wait_for(tool.matched_event(), timeout=give_up)
        except AssertionError:
            return {"matched": False, "failed": "not both ready and matched in time"}
        last = max(proc.arrival_of(tool.matched_event()) for proc in procs)
        return {"matched": True, "launch_to_both_matched": last - launched}
    finally:
        for proc in procs:
            proc.stop()


def import_cost(times: int = 3) -> dict:
    """What importing the CLI and the node costs a fresh interpreter (wall and CPU), in this run's load.

    ``lean``: as the executable starts (``strangers.lean_imports`` first);
    ``full``: all of py-libp2p, as a program importing the node gets it.
    """
    from strangers.testing import compile_bytecode

    compile_bytecode()  # as installed: no module compiled at launch
    result = {}
    for label, first in (("lean", "from strangers import lean_imports; lean_imports.install()\n"),
                         ("full", "")):
        code = ("import os, time\nw, c = time.monotonic(), time.process_time()\n" + first +
                "import strangers.cli.main, strangers.node.node\n"
                "print(time.monotonic() - w, time.process_time() - c)")
        walls, cpus = [], []
        for _ in range(times):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True)
            wall, cpu = (float(value) for value in done.stdout.split())
            walls.append(wall)
            cpus.append(cpu)
        result[label] = {"wall": spread(walls), "cpu": spread(cpus)}
    return result


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux ``/proc``), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(runs: list[dict], rtt: float) -> dict:
    done = [run for run in runs if run.get("matched")]
    row: dict = {"runs": len(runs), "matched": len(done)}
    paths = [str(run["path"]) for run in done if run.get("path")]
    if paths:
        row["paths"] = {path: paths.count(path) for path in sorted(set(paths))}
    for name in ("launch_to_ready", "cpu_at_ready", "ready_to_matched", "launch_to_matched", "chat_rtt",
                 "launch_to_both_matched"):
        values = [run[name] for run in done if name in run]
        if values:
            row[name] = spread(values)
            if rtt > 0 and name not in ("launch_to_ready", "cpu_at_ready"):
                row[f"{name}_round_trips"] = round(round_trips(row[name]["median"], rtt), 1)
    return row


# -- part 1: strangers over added latency ---------------------------------------------


def wan_part(rtts: list[int], flag_sets: list[tuple[str, list[str]]], runs: int, *,
             give_up: float, messages: int, loss: float, jitter: float, hyperswarm: bool,
             seeds: int) -> list[dict]:
    """Per RTT and run, one delay router; in it, back to back, each strangers flag set, then Hyperswarm."""
    def tools() -> list:
        made: list = [StrangersTool(flags, first_launch=label == FIRST_LAUNCH, label=label)
                      for label, flags in flag_sets]
        return made + ([HyperswarmTool()] if hyperswarm else [])

    rows = []
    for rtt_ms in rtts:
        rtt = rtt_ms / 1000
        settings = PathSettings.for_rtt(rtt, jitter=min(jitter, rtt / 4), loss=loss if rtt else 0.0)
        raw: dict[str, dict[str, list[dict]]] = {}
        for run in range(runs):
            with DelayRouter(settings, hosts_wanted=3, seed=run) as net:
                prefixes = [host.prefix for host in net.hosts]
                for tool in tools():
                    entry = raw.setdefault(tool.label, {"waiting": [], "together": []})
                    seed_procs, addrs = [], []
                    try:
                        # strangers: one serve node; HyperDHT finds nobody with fewer than 3
                        for _ in range(seeds if isinstance(tool, HyperswarmTool) else 1):
                            proc, addr = tool.seed(net.hosts[0], prefixes[0], addrs)
                            seed_procs.append(proc)
                            addrs.append(addr)
                        entry["waiting"].append(scenario_waiting(
                            tool, net.hosts, prefixes, addrs[0], give_up=give_up,
                            messages=messages if isinstance(tool, StrangersTool) else 0))
                        entry["together"].append(scenario_together(
                            tool, net.hosts, prefixes, addrs[0], give_up=give_up))
                    finally:
                        for proc in seed_procs:
                            proc.stop()
                        tool.cleanup()
                    log(f"rtt {rtt_ms:>3} ms [{tool.label}] run {run + 1}: "
                        f"waiting {brief(entry['waiting'][-1])}, together {brief(entry['together'][-1])}")
        for label, entry in raw.items():
            rows.append({"rtt_ms": rtt_ms, "flags": label,
                         "extra_flags": dict(flag_sets).get(label, []),
                         "settings": settings.__dict__,
                         "waiting": summarise(entry["waiting"], rtt),
                         "together": summarise(entry["together"], rtt), "raw": entry})
    for label in {row["flags"] for row in rows}:
        points = [(row["rtt_ms"] / 1000, run["ready_to_matched"]) for row in rows
                  if row["flags"] == label for run in row["raw"]["waiting"] if run.get("matched")]
        fit = fit_round_trips(points)
        for row in rows:
            if row["flags"] == label:
                row["ready_to_matched_fit"] = fit
    return rows


# -- part 2: strangers and Hyperswarm back to back ------------------------------------


class PrivateLoopback:
    """A network namespace with only ``lo``: loopback traffic (and mDNS) stays inside it."""

    def __init__(self) -> None:
        self.name = f"snb-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> list[str]:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"],
                       check=True)
        return ["ip", "netns", "exec", self.name]

    def __exit__(self, *exc_info: object) -> None:
        subprocess.run(["ip", "netns", "pids", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def side_by_side(runs: int, *, seeds: int, give_up: float, hyperswarm: bool) -> dict:
    tools = [StrangersTool([])] + ([HyperswarmTool()] if hyperswarm else [])
    raw: dict[str, dict[str, list[dict]]] = {tool.name: {"waiting": [], "together": []}
                                             for tool in tools}
    for run in range(runs):
        for tool in tools:  # back to back: strangers, then Hyperswarm, in each run
            with PrivateLoopback() as prefix:
                seed_procs, addrs = [], []
                try:
                    for _ in range(seeds):
                        proc, addr = tool.seed(None, prefix, addrs)
                        seed_procs.append(proc)
                        addrs.append(addr)
                    prefixes = [prefix] * 3
                    hosts = [None] * 3
                    # each peer bootstraps through one DHT node: the first one
                    raw[tool.name]["waiting"].append(scenario_waiting(
                        tool, hosts, prefixes, addrs[0], give_up=give_up, messages=0))
                    raw[tool.name]["together"].append(scenario_together(
                        tool, hosts, prefixes, addrs[0], give_up=give_up))
                finally:
                    for proc in seed_procs:
                        proc.stop()
            log(f"0 ms loopback [{tool.name}] run {run + 1}: "
                f"waiting {brief(raw[tool.name]['waiting'][-1])}, "
                f"together {brief(raw[tool.name]['together'][-1])}")
    return {name: {"waiting": summarise(entry["waiting"], 0.0),
                   "together": summarise(entry["together"], 0.0), "raw": entry}
            for name, entry in raw.items()}


# -- output ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def brief(run: dict) -> str:
    if not run.get("matched"):
        return "no match"
    return ", ".join(f"{name} {value:.2f} s" if isinstance(value, float) else f"{name} {value}"
                     for name, value in run.items() if name != "matched")


def format_tables(result: dict) -> str:
    lines = ["| RTT | tool / flags | launch -> ready | ready -> matched (round trips) | launch -> matched "
             "| both launched together -> matched | chat RTT | matched | paths |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["wan"]:
        waiting, together = row["waiting"], row["together"]
        trips = waiting.get("ready_to_matched_round_trips")
        lines.append(
            f"| {row['rtt_ms']} ms | {row['flags']} | {show(waiting.get('launch_to_ready', {}))} "
            f"| {show(waiting.get('ready_to_matched', {}))}{f' ({trips:.0f} RTT)' if trips else ''} "
            f"| {show(waiting.get('launch_to_matched', {}))} "
            f"| {show(together.get('launch_to_both_matched', {}))} "
            f"| {show(waiting.get('chat_rtt', {}), 'ms', 1000, 0)} "
            f"| {waiting['matched']}/{waiting['runs']}, {together['matched']}/{together['runs']} "
            f"| {waiting.get('paths', '')} |")
    fits = {row["flags"]: row.get("ready_to_matched_fit") for row in result["wan"]}
    for label, fit in fits.items():
        if fit:
            lines.append(f"\n[{label}] ready -> matched = {fit['fixed_seconds']:.2f} s + "
                         f"{fit['round_trips']:.1f} x RTT (least squares over {fit['points']} runs)")
    if result.get("side_by_side"):
        lines += ["", "| 0 ms, private loopback | launch -> ready | ready -> matched/connected "
                  "| launch -> matched/connected | both launched together -> both matched |",
                  "|---|---|---|---|---|"]
        for name, entry in result["side_by_side"].items():
            waiting, together = entry["waiting"], entry["together"]
            lines.append(f"| {name} | {show(waiting.get('launch_to_ready', {}))} "
                         f"| {show(waiting.get('ready_to_matched', {}))} "
                         f"| {show(waiting.get('launch_to_matched', {}))} "
                         f"| {show(together.get('launch_to_both_matched', {}))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 runs, 0 and 150 ms, defaults only, 2 chat messages (a few minutes)")
    parser.add_argument("--rtts", default="0,50,150", help="round-trip times in ms")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flag-sets", default=f"default;{FIRST_LAUNCH}=",
                        help='"label=flags;..."; the defaults always run first (each stranger '
                             'with its own data directory holding a pre-minted identity, as a '
                             f'second launch); "{FIRST_LAUNCH}=..." starts from an empty data '
                             'directory (the very first launch: the node mints its proof); '
                             '"seed:--flag" goes to the seed only (e.g. "relay-less=seed:--no-relay")')
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--loss", type=float, default=0.01, help="packet loss, each way")
    parser.add_argument("--jitter", type=float, default=0.01, help="seconds, each way")
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--no-hyperswarm", action="store_true")
    parser.add_argument("--seeds", type=int, default=3,
                        help="HyperDHT nodes for Hyperswarm (it finds nobody with fewer than 3); "
                             "--side-by-side gives strangers as many")
    parser.add_argument("--no-wan", action="store_true", help="only the side-by-side part")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also the older 0 ms private-loopback comparison (part 2)")
    parser.add_argument("--logs", type=Path,
                        help="write each waiting scenario's logs (stderr) here (add -v to a flag set)")
    args = parser.parse_args()
    global LOGS
    LOGS = args.logs
    if args.quick:
        args.rtts, args.flag_sets, args.messages = "0,150", "default", 2
    if args.runs < 3:
        parser.error("--runs must be at least 3: a spread needs them")
    reason = namespaces_unavailable()
    if reason:
        sys.exit(f"bench/run.py: {reason}")
    hyperswarm = not args.no_hyperswarm
    if hyperswarm and not (shutil.which("node") and (HYPERSWARM.parent / "node_modules").is_dir()):
        sys.exit("bench/run.py: Hyperswarm needs Node.js and `npm ci` in bench/hyperswarm "
                 "(or pass --no-hyperswarm)")
    if not args.no_wan:
        premints = sum(1 for label, _ in parse_flag_sets(args.flag_sets) if label != FIRST_LAUNCH)
        count = 4 * premints  # one run's strangers; the next runs take them again
        log(f"minting {count} identities ahead (a returning user's, not timed)")
        MINTED.ahead(count)
    began = time.monotonic()
    result: dict = {"command": " ".join(sys.argv), "started_utc": time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime()), "load_average": os.getloadavg()}
    result["wan"] = [] if args.no_wan else wan_part(
        parse_rtts(args.rtts), parse_flag_sets(args.flag_sets), args.runs, give_up=args.give_up,
        messages=args.messages, loss=args.loss, jitter=args.jitter, hyperswarm=hyperswarm,
        seeds=args.seeds)
    result["side_by_side"] = {} if not (args.side_by_side or args.no_wan) else side_by_side(
        args.runs, seeds=args.seeds, give_up=args.give_up, hyperswarm=hyperswarm)
    result["import_cost"] = import_cost()
    result["load_average_end"] = os.getloadavg()
    result["runtime_seconds"] = round(time.monotonic() - began, 1)
    log("\n" + format_tables(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
