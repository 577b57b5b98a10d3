"""Issue 8's figures in one run: time to match a waiting stranger and chat round trip,
with default settings, beside ``--no-mdns``, Hyperswarm, and each network path.

One invocation measures, in this order (prints one JSON object on stdout, a
table on stderr):

1. **Hyperswarm** (``bench/hyperswarm/bench.mjs --match-only``, run as a
   subprocess inside a fresh namespace with only ``lo``): join -> connection
   with a waiting peer on 10 HyperDHT node processes, and the message round
   trip driven over stdio. Needs ``node`` and ``npm install`` in
   bench/hyperswarm (``--no-hyperswarm`` skips it).
2. **Loopback, 10 nodes** (a fresh namespace with only ``lo``, multicast on
   and a 224.0.0.0/4 route, like bench/lan.py): ten ``serve`` nodes with
   default settings; per round a stranger waits (``advertised``), a second one
   starts; its ``ready`` -> ``matched`` and its launch -> ``matched`` (parent
   clock, when the events are read), then ``send`` -> ``delivered`` round
   trips. Default settings (mDNS on) and ``--no-mdns``, rounds interleaved,
   then a **first launch** with default settings. Every stranger has its own
   data directory (``$STRANGERS_HOME``); a returning user's holds the identity
   its previous run pre-minted (``next-identity.json``, at the network's
   difficulty, minted before anything is measured), so it proposes from
   ``ready``; a first launch's is empty, so it mints its identity proof while
   it searches (what a machine's very first run does). ``--baseline PATH``
   adds the default and ``--no-mdns`` rows of another install's executable
   (e.g. main's, before a change), returning users on the same network,
   interleaved round by round with this install's: a before/after in one run.
3. **Paths** in a lab of namespaces (tests/netlab.py; 10.77.0.0/24 WAN with a
   public ``serve`` node, home routers that masquerade and drop unsolicited
   inbound SYNs; a separate bridged LAN segment):

   * ``direct``: two hosts on the routed WAN, bootstrap through the public
     node, ``--no-mdns`` (the WAN is one bridge here: mDNS would make it LAN);
   * ``relayed``: two hosts each behind its own NAT, bootstrap through the
     public node (which relays), ``--no-mdns``, AutoNAT decides (no
     ``--behind-nat``); the round trips are labelled with the path they ran
     on: those measured before a ``path`` event (DCUtR) are relayed; the
     bench then waits up to ``--move-wait`` s for the move and measures again;
   * ``lan``: two hosts on one bridged segment, default settings (mDNS on),
     ``--no-bootstrap``;
   * ``lan-offline``: the same segment and no flag at all: the public
     bootstrap list is dialled and fails at once (the namespace has no route
     out), as for two laptops in a room with no internet.

Needs root, iproute2, iptables. Everything stays in namespaces this script
creates and removes.

    sudo .venv/bin/python bench/paths.py [--rounds 7] [--path-rounds 5] [--messages 20]
        [--baseline /path/to/other/.venv/bin/strangers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from homes import Homes  # noqa: E402
from lan import namespace, start_network  # noqa: E402
from netlab import Host, Lab  # noqa: E402

import strangers.testing  # noqa: E402
from strangers.testing import Strangers  # noqa: E402

HYPERSWARM = ROOT / "bench" / "hyperswarm"
LOGS: Path | None = None
"""Where each round's node logs go (``--logs``)."""


def summary(values: list[float]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"n": len(ordered), "median": round(statistics.median(ordered), 4),
            "min": round(ordered[0], 4),
            "p90": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], 4),
            "max": round(ordered[-1], 4)}


def event(node: Strangers, predicate: Callable[[dict], bool] | str, timeout: float = 30.0) -> dict:
    """The first event matching ``predicate`` (a name or a test), already read or to come."""
    if isinstance(predicate, str):
        name = predicate
        predicate = lambda e: e.get("event") == name  # noqa: E731
    for seen in node.events:
        if predicate(seen):
            return seen
    return node.wait_for(predicate, timeout=timeout)


def arrival(node: Strangers, wanted: dict) -> float:
    return next(t for e, t in zip(node.events, node.arrivals) if e is wanted)


def round_trips(sender: Strangers, receiver: Strangers, count: int) -> list[tuple[float, float]]:
    """``count`` texts ``send`` -> ``delivered`` (seconds), each with the moment it ended."""
    out = []
    for n in range(count):
        started = time.monotonic()
        sender.send({"cmd": "send", "text": f"bench {n}"})
        sender.wait_for("delivered", timeout=15)
        ended = time.monotonic()
        out.append((ended - started, ended))
        receiver.wait_for("message", timeout=15)
    return out


def one_round(start_waiting: Callable[[str], Strangers], start_joiner: Callable[[str], Strangers],
              waiting_until: Callable[[Strangers], None], messages: int,
              move_wait: float = 0.0) -> dict:
    """A stranger waits, another joins: the joiner's timings and the chat round trips."""
    interest = f"b{uuid.uuid4().hex[:8]}"
    waiting = start_waiting(interest)
    joiner = None
    try:
        waiting_until(waiting)
        launched = time.monotonic()
        joiner = start_joiner(interest)
        ready = event(joiner, "ready", timeout=30)
        matched = event(joiner, "matched", timeout=60)
        event(waiting, "matched", timeout=30)
        ready_at, matched_at = arrival(joiner, ready), arrival(joiner, matched)
        result: dict = {"ready_to_matched": matched_at - ready_at,
                        "launch_to_matched": matched_at - launched,
                        "launch_to_ready": ready_at - launched,
                        "path": matched.get("path")}
        trips = round_trips(joiner, waiting, messages)
        moved = [e for e in joiner.events if e.get("event") == "path"]
        if matched.get("path") == "relayed" and move_wait > 0:
            if not moved:
                try:
                    event(joiner, "path", timeout=move_wait)
                except AssertionError:
                    pass
                moved = [e for e in joiner.events if e.get("event") == "path"]
            if moved:
                moved_at = arrival(joiner, moved[0])
                result["moved_to"] = moved[0]["path"]
                result["moved_after_matched"] = moved_at - matched_at
                result["rtt_before_move"] = [rtt for rtt, ended in trips if ended < moved_at]
                result["rtt_after_move"] = [rtt for rtt, _ in round_trips(joiner, waiting, messages)]
            else:
                result["moved_to"] = None
                result["rtt_before_move"] = [rtt for rtt, _ in trips]
        result["rtt"] = [rtt for rtt, _ in trips]
        return result
    finally:
        waiting.stop()
        if joiner is not None:
            joiner.stop()
        if LOGS is not None:
            LOGS.mkdir(parents=True, exist_ok=True)
            for role, node in (("waiting", waiting), ("joiner", joiner)):
                if node is not None:
                    (LOGS / f"{interest}-{role}.log").write_text("".join(node.stderr_lines))


# -- 1. Hyperswarm ------------------------------------------------------------------------


def hyperswarm(nodes: int, rounds: int, messages: int) -> dict:
    if not (HYPERSWARM / "node_modules").exists():
        return {"skipped": "run `npm install` in bench/hyperswarm first"}
    with namespace() as prefix:
        done = subprocess.run([*prefix, "node", "bench.mjs", "--nodes", str(nodes), "--rounds", str(rounds),
                               "--messages", str(messages), "--match-only"],
                              cwd=HYPERSWARM, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    sys.stderr.write(done.stderr)
    report = json.loads(done.stdout)
    entry = report[f"network_{nodes}"]
    wait = entry["match_waiting"]
    return {
        "versions": report["versions"],
        "join_to_connection_s": {k: wait[k] for k in ("n", "median", "p90", "p99")},
        "ready_to_connection_parent_clock_s": wait["ready_to_connection_parent_clock"],
        "launch_to_connection_s": wait["launch_to_connection"],
        "rtt_driven_over_stdio_s": entry["chat"]["rtt_driven_over_stdio"],
        "tcp_loopback_rtt_s": report["baseline"]["tcp_loopback_rtt"],
        "non_loopback_destinations": report["non_loopback_destinations"],
    }


# -- 2. loopback, ten nodes ---------------------------------------------------------------


LOOPBACK_MODES = {
    # name: (flags, whether the joiner is a returning user with a pre-minted identity)
    "default": ([], True),
    "no_mdns": (["--no-mdns"], True),
    "first_launch": ([], False),
}


def started_with(command: list[str] | None, *args: str, **kwargs) -> Strangers:
    """A ``Strangers`` process of ``command`` (another install: a baseline), or of this one."""
    if command is None:
        return Strangers(*args, **kwargs)
    saved = strangers.testing.strangers_command
    strangers.testing.strangers_command = lambda: command  # type: ignore[assignment]
    try:
        return Strangers(*args, **kwargs)
    finally:
        strangers.testing.strangers_command = saved  # type: ignore[assignment]


def loopback(nodes: int, rounds: int, messages: int, homes: Homes,
             baseline: list[str] | None = None) -> dict:
    """Per round: default flags, ``--no-mdns``, then a first launch with default flags.

    Every stranger has its own data directory; the waiting one is always a
    returning user (it proposes and accepts from ``ready``), the joiner too
    except in ``first_launch`` (no pre-minted identity: it mints its proof at
    the network's difficulty while it searches, as on a machine's very first run).
    """
    modes = {mode: (flags, returning, None) for mode, (flags, returning) in LOOPBACK_MODES.items()}
    if baseline is not None:  # the same rounds with another install, interleaved (an A/B in one run)
        modes.update({f"baseline_{mode}": (flags, True, baseline)
                      for mode, (flags, returning) in LOOPBACK_MODES.items() if returning})
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    failures: dict[str, list[str]] = {mode: [] for mode in modes}
    with namespace() as prefix:
        network, addrs = start_network(prefix, nodes)
        try:
            time.sleep(2)  # let the network settle (routing tables, mDNS announcements)
            for index in range(rounds):
                for mode, (flags, returning, command) in modes.items():
                    def chat(boot: str, returning: bool, flags: list[str] = flags,
                             command: list[str] | None = command) -> Callable[[str], Strangers]:
                        return lambda interest: started_with(
                            command, "chat", "--json", "--bootstrap", boot, "-i", interest, "--interests-only",
                            *flags, prefix=prefix, env=homes.env(returning))
                    try:
                        runs[mode].append(one_round(
                            chat(addrs[index % len(addrs)], True),
                            chat(addrs[(index + 5) % len(addrs)], returning),
                            lambda node: event(node, "advertised", timeout=60), messages))
                    except AssertionError as exc:  # a round that timed out: counted, the others go on
                        failures[mode].append(str(exc)[:600])
        finally:
            for node in network:
                node.stop()
    out = {}
    for mode, found in runs.items():
        out[mode] = collect(found) if found else {}
        out[mode]["failed_rounds"] = len(failures[mode])
        if failures[mode]:
            out[mode]["first_failure"] = failures[mode][0]
    return out


def collect(found: list[dict]) -> dict:
    out: dict = {key: summary([r[key] for r in found])
                 for key in ("ready_to_matched", "launch_to_matched", "launch_to_ready")}
    out["rtt"] = summary([x for r in found for x in r["rtt"]])
    out["paths_at_match"] = [r["path"] for r in found]
    if any("moved_to" in r for r in found):
        out["moved_to"] = [r.get("moved_to") for r in found]
        out["moved_after_matched"] = summary([r["moved_after_matched"] for r in found
                                              if r.get("moved_after_matched") is not None])
        out["rtt_before_move"] = summary([x for r in found for x in r.get("rtt_before_move", [])])
        out["rtt_after_move"] = summary([x for r in found for x in r.get("rtt_after_move", [])])
    return out


# -- 3. paths -----------------------------------------------------------------------------


def interface_of(host: Host) -> str:
    out = host.run("ip", "-o", "-4", "addr", "show").stdout
    return next(line.split()[1] for line in out.splitlines() if f" {host.ip}/" in line)


def paths(rounds: int, messages: int, move_wait: float, homes: Homes, only: list[str] | None = None) -> dict:
    results: dict[str, dict] = {}
    procs: list[Strangers] = []
    with Lab() as lab:
        wan = lab.switch("wan", "10.77.0.0/24")
        public = lab.host("pub", wan, "10.77.0.2")
        serve = Strangers("serve", "--json", "--listen", f"/ip4/{public.ip}/tcp/4001", "--no-bootstrap",
                          "--no-mdns", prefix=public.prefix)
        procs.append(serve)
        try:
            ready = serve.wait_for("ready", timeout=30)
            relay = next(a for a in ready["addrs"] if a.startswith(f"/ip4/{public.ip}/"))
            open_hosts = [lab.host(name, wan, ip) for name, ip in (("a", "10.77.0.3"), ("b", "10.77.0.4"))]
            laptops = []
            for index in (1, 2):
                router = lab.nat(f"home{index}", wan, f"10.77.0.{10 + index}", f"192.168.{index}.0/24")
                laptops.append(lab.host(f"laptop{index}", router.lan, f"192.168.{index}.2",
                                        gateway=router.lan_ip))
            segment = lab.switch("lan", "10.87.0.0/24")
            lan_hosts = [lab.host(f"l{n}", segment, f"10.87.0.{n}") for n in (1, 2)]
            for host in lan_hosts:
                device = interface_of(host)
                host.run("ip", "link", "set", device, "multicast", "on")
                host.run("ip", "route", "add", "224.0.0.0/4", "dev", device)

            def wan_chat(host: Host) -> Callable[[str], Strangers]:
                return lambda interest: Strangers(
                    "chat", "--json", "--listen", f"/ip4/{host.ip}/tcp/0", "--no-mdns", "--bootstrap", relay,
                    "-i", interest, "--interests-only", "-v", prefix=host.prefix, env=homes.env(True))

            def lan_chat(host: Host) -> Callable[[str], Strangers]:
                return lambda interest: Strangers(
                    "chat", "--json", "--no-bootstrap", "-i", interest, "--interests-only", "-v",
                    prefix=host.prefix, env=homes.env(True))

            def lan_offline_chat(host: Host) -> Callable[[str], Strangers]:
                """Default flags (the public bootstrap list too) on a segment with no way out."""
                return lambda interest: Strangers(
                    "chat", "--json", "-i", interest, "--interests-only", "-v",
                    prefix=host.prefix, env=homes.env(True))

            def relayed_and_advertised(node: Strangers) -> None:
                event(node, lambda e: e.get("event") == "reachability" and e["relays"] >= 1, timeout=45)
                event(node, "advertised", timeout=30)

            def lan_waiting(node: Strangers) -> None:
                event(node, "ready", timeout=30)
                try:
                    event(node, "advertised", timeout=5)
                except AssertionError:
                    pass

            plan = {
                "direct": (wan_chat(open_hosts[0]), wan_chat(open_hosts[1]),
                           lambda node: event(node, "advertised"), 0.0),
                "relayed": (wan_chat(laptops[0]), wan_chat(laptops[1]), relayed_and_advertised, move_wait),
                "lan": (lan_chat(lan_hosts[0]), lan_chat(lan_hosts[1]), lan_waiting, 0.0),
                "lan-offline": (lan_offline_chat(lan_hosts[0]), lan_offline_chat(lan_hosts[1]), lan_waiting, 0.0),
            }
            plan = {name: entry for name, entry in plan.items() if only is None or name in only}
            runs: dict[str, list[dict]] = {name: [] for name in plan}
            failures: dict[str, list[str]] = {name: [] for name in plan}
            for _ in range(rounds):
                for name, (waiting, joiner, until, wait) in plan.items():
                    try:
                        runs[name].append(one_round(waiting, joiner, until, messages, wait))
                    except AssertionError as exc:
                        failures[name].append(str(exc)[:600])
            for name in plan:
                results[name] = collect(runs[name]) if runs[name] else {}
                results[name]["failed_rounds"] = len(failures[name])
                if failures[name]:
                    results[name]["first_failure"] = failures[name][0]
        finally:
            for proc in procs:
                proc.stop()
    return results


# -- report -------------------------------------------------------------------------------


def ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{1000 * value:.{digits}f} ms"


def table(result: dict) -> str:
    hs = result.get("hyperswarm", {})
    base = hs.get("join_to_connection_s", {}).get("median")
    base_parent = hs.get("ready_to_connection_parent_clock_s", {}).get("median")
    lines = ["", f"{'case':44} {'ready->matched':>16} {'x HS':>6} {'launch->matched':>16} {'chat RTT':>10}"]
    if base:
        lines.append(f"{'Hyperswarm join->connection (in joiner)':44} {ms(base, 1):>16} {'1.0':>6} "
                     f"{ms(hs['launch_to_connection_s']['median']):>16} "
                     f"{ms(hs['rtt_driven_over_stdio_s']['median'], 2):>10}")
        lines.append(f"{'Hyperswarm ready->connection (parent clock)':44} {ms(base_parent, 1):>16}")

    def row(label: str, entry: dict) -> None:
        if not entry.get("ready_to_matched"):
            lines.append(f"{label:44} failed: {entry.get('first_failure', '')[:80]}")
            return
        median = entry["ready_to_matched"]["median"]
        ratio = f"{median / base:.1f}" if base else "-"
        spread = f"{ms(entry['ready_to_matched']['min'])}..{ms(entry['ready_to_matched']['max'])}"
        lines.append(f"{label:44} {ms(median, 1):>16} {ratio:>6} "
                     f"{ms(entry['launch_to_matched']['median']):>16} {ms(entry['rtt']['median'], 2):>10}"
                     f"   (range {spread}, n={entry['ready_to_matched']['n']})")

    for mode, label in (("default", "loopback 10 nodes, default (mDNS on)"),
                        ("no_mdns", "loopback 10 nodes, --no-mdns"),
                        ("first_launch", "loopback 10, default, FIRST launch (mints)"),
                        ("baseline_default", "BASELINE install, default (mDNS on)"),
                        ("baseline_no_mdns", "BASELINE install, --no-mdns")):
        if mode in result.get("loopback", {}):
            row(label, result["loopback"][mode])
    for name, entry in result.get("paths", {}).items():
        row(f"path {name}", entry)
        if name == "relayed" and entry.get("moved_to") is not None:
            lines.append(f"{'':44} RTT before move {ms((entry.get('rtt_before_move') or {}).get('median'), 2)}, "
                         f"after {ms((entry.get('rtt_after_move') or {}).get('median'), 2)}; "
                         f"moved: {entry['moved_to']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="loopback and Hyperswarm rounds")
    parser.add_argument("--path-rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20, help="chat round trips per round")
    parser.add_argument("--move-wait", type=float, default=10.0,
                        help="seconds to wait for DCUtR to move a relayed chat")
    parser.add_argument("--no-hyperswarm", action="store_true")
    parser.add_argument("--no-paths", action="store_true")
    parser.add_argument("--no-loopback", action="store_true")
    parser.add_argument("--only-paths", default="direct,relayed,lan,lan-offline",
                        help="comma-separated paths to measure (default: all four)")
    parser.add_argument("--logs", type=Path, help="write each round's node logs (stderr) to this directory")
    parser.add_argument("--strangers", help="the strangers executable to run (default: this install's)")
    parser.add_argument("--baseline", help="another strangers executable (e.g. main's): its default and "
                        "--no-mdns rounds run interleaved with this install's, returning users, same network")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    global LOGS
    LOGS = options.logs
    if options.strangers:
        strangers.testing.strangers_command = lambda: [options.strangers]  # type: ignore[assignment]
    started = time.time()
    result: dict = {"strangers": strangers.testing.strangers_command(), "rounds": options.rounds,
                    "path_rounds": options.path_rounds, "messages_per_round": options.messages,
                    "load_average_at_start": os.getloadavg()}
    if not options.no_hyperswarm:
        result["hyperswarm"] = hyperswarm(options.nodes, options.rounds, 4 * options.messages)
    homes = Homes()
    try:
        # every returning stranger's identity minted before anything is measured
        wanted = 2 * options.rounds * (len(LOOPBACK_MODES) + 2 * bool(options.baseline)) \
            if not options.no_loopback else 0
        wanted += 0 if options.no_paths else 2 * options.path_rounds * len(options.only_paths.split(","))
        result["identity_bits"] = homes.bits
        result["identities_preminted_in_s"] = round(homes.premint(wanted), 1)
        if not options.no_loopback:
            result["loopback"] = loopback(options.nodes, options.rounds, options.messages, homes,
                                          [options.baseline] if options.baseline else None)
            if options.baseline:
                result["baseline"] = options.baseline
        if not options.no_paths:
            result["paths"] = paths(options.path_rounds, options.messages, options.move_wait, homes,
                                    options.only_paths.split(","))
    finally:
        homes.close()
    base = result.get("hyperswarm", {}).get("join_to_connection_s", {}).get("median")
    if base:
        result["ratio_to_hyperswarm_join_to_connection"] = {
            **{f"loopback_{mode}": round(e["ready_to_matched"]["median"] / base, 2)
               for mode, e in result.get("loopback", {}).items() if e.get("ready_to_matched")},
            **{f"path_{name}": round(e["ready_to_matched"]["median"] / base, 2)
               for name, e in result.get("paths", {}).items() if e.get("ready_to_matched")},
        }
    result["load_average_at_end"] = os.getloadavg()
    result["seconds"] = round(time.time() - started, 1)
    print(json.dumps(result, indent=2))
    sys.stderr.write(table(result))


if __name__ == "__main__":
    main()
