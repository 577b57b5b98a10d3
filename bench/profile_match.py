"""Where a match's time goes: cProfile of both strangers from ``ready`` to ``matched`` (prints JSON).

Same shape as bench/paths.py's loopback rows (a fresh namespace with only
``lo``, ten ``serve`` nodes with default settings, every stranger a
returning user with its own data directory and a pre-minted identity). Per
round a stranger waits (``advertised``), a second one starts; each runs
under a wrapper (this file with ``--child``) that switches cProfile on when
the node prints ``ready`` (the joiner) or ``advertised`` (the waiting one)
and off at ``matched``, and dumps the stats. The joiner runs with ``-v``: its
log lines give the phases (walk, proposal, answer, matched).

Printed: per round the joiner's ready -> matched (parent clock), its CPU
time in that window (``time.process_time``), the phases from its log, and
the top functions by cumulative and own time of both strangers (summed over
the rounds). cProfile slows Python code ~1.5-2x: read the shares, not the
absolute times.

``--trace`` instead (no cProfile): both strangers log, with wall-clock
times, the start and end of every dial, inbound upgrade, Kademlia request,
stamp, identify (asked and answered), multistream negotiation, proposal and
answer (``TRACE <unix time> start|end <what>`` lines in
``joiner-N.log``/``waiting-N.log`` of the directory printed as
``profiles``): a timeline of both sides of each match.

    sudo .venv/bin/python bench/profile_match.py [--rounds 4] [--no-mdns] [--top 40] [--trace]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child() -> None:
    """Run ``strangers`` with cProfile on between two events of its --json output."""
    import cProfile

    out = os.environ["STRANGERS_PROFILE_OUT"]
    start_on = os.environ.get("STRANGERS_PROFILE_FROM", "ready")
    profile = cProfile.Profile()
    profiling = os.environ.get("STRANGERS_PROFILE_CPU", "1") == "1"
    real = sys.stdout
    state = {"on": False, "done": False, "cpu": 0.0, "wall": 0.0}

    class Watch:
        def write(self, text: str) -> int:
            written = real.write(text)
            if not state["done"]:
                if not state["on"] and f'"event": "{start_on}"' in text:
                    state["on"] = True
                    state["cpu"], state["wall"] = time.process_time(), time.perf_counter()
                    if profiling:
                        profile.enable()
                elif state["on"] and '"event": "matched"' in text:
                    if profiling:
                        profile.disable()
                    state["done"] = True
                    cpu = time.process_time() - state["cpu"]
                    wall = time.perf_counter() - state["wall"]
                    if profiling:
                        profile.dump_stats(out)
                    Path(out + ".json").write_text(json.dumps({"cpu": cpu, "wall": wall}))
            return written

        def __getattr__(self, name: str):
            return getattr(real, name)

    sys.stdout = Watch()  # type: ignore[assignment]
    sys.argv = ["strangers", *sys.argv[2:]]
    if os.environ.get("STRANGERS_TRACE") == "1":
        trace(state)
    from strangers.cli.main import entry

    sys.exit(entry())


def trace(state: dict) -> None:
    """Log (stderr, ``TRACE +ms``) the start and end of dials, inbound upgrades,
    Kademlia requests, stamps, identify pushes and proposals, from ``ready`` on."""
    import functools

    from libp2p.network.swarm import Swarm

    from strangers.crypto import pow
    from strangers.node import matching
    from strangers.node.libp2p import announce, kad

    def note(text: str) -> None:
        if state["wall"]:
            sys.stderr.write(f"TRACE {time.time():.4f} {text}\n")

    def wrap_async(owner, name: str, label) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        async def wrapped(*args, **kwargs):
            what = label(*args, **kwargs)
            note(f"start {what}")
            try:
                return await original(*args, **kwargs)
            finally:
                note(f"end   {what}")

        setattr(owner, name, wrapped)

    def peer(value) -> str:
        return str(value)[-6:]

    wrap_async(Swarm, "_dial_addr_single_attempt", lambda self, addr, peer_id, *a, **k: f"dial {peer(peer_id)}")
    wrap_async(Swarm, "upgrade_inbound_raw_conn", lambda self, *a, **k: "inbound upgrade")
    wrap_async(kad.StrangersDHT, "_rpc", lambda self, p, req, kind: f"{kind} {peer(p)}")
    wrap_async(announce.Announcements, "push", lambda self, peers=None: "identify push")
    wrap_async(matching.MatchService, "_ask", lambda self, info, *a, **k: f"propose {peer(info.peer_id)}")
    wrap_async(matching.MatchService, "_handle", lambda self, stream, p: f"answer {peer(p)}")
    wrap_async(matching.MatchService, "handle_stream", lambda self, stream: "match stream")
    from libp2p.host.basic_host import BasicHost
    from libp2p.protocol_muxer.multiselect import Multiselect
    wrap_async(BasicHost, "_identify_peer", lambda self, p, **k: f"identify {peer(p)}")
    wrap_async(BasicHost, "new_stream", lambda self, p, protocols, **k: f"new_stream {peer(p)} {protocols[0]}")
    wrap_async(BasicHost, "_swarm_stream_handler", lambda self, stream: "inbound stream")
    wrap_async(Multiselect, "negotiate", lambda self, *a, **k: "negotiate")
    wrap_async(announce.Announcements, "handle_identify", lambda self, stream: "identify answer")
    original_mint = pow.mint_stamp

    def mint(*args, **kwargs):
        note("start stamp")
        try:
            return original_mint(*args, **kwargs)
        finally:
            note("end   stamp")

    pow.mint_stamp = mint


PHASES = [("walk", re.compile(r"search \d+\.\d+: walking")),
          ("walk_result", re.compile(r"walk to .*: [1-9]\d* provider")),
          ("proposing", re.compile(r"proposing to")),
          ("answer", re.compile(r"answer from .*: Accept"))]


def phases(lines: list[str]) -> dict[str, float]:
    """The first log time of each phase (seconds since the epoch, from asctime)."""
    found: dict[str, float] = {}
    for line in lines:
        for name, pattern in PHASES:
            if name not in found and pattern.search(line):
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                found[name] = stamp.timestamp()
    return found


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
        return
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from homes import Homes
    from lan import namespace, start_network
    from paths import arrival, event

    from strangers.testing import Strangers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--no-mdns", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true", help="phases only (no cProfile)")
    parser.add_argument("--trace", action="store_true",
                        help="no cProfile: log dials, requests, stamps, pushes, proposals (TRACE lines)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    flags = ["--no-mdns"] if options.no_mdns else []
    work = Path(tempfile.mkdtemp(prefix="strangers-profile-"))
    homes = Homes()
    rounds = []
    try:
        homes.premint(2 * options.rounds)
        with namespace() as prefix:
            network, addrs = start_network(prefix, options.nodes)
            try:
                time.sleep(2)
                for index in range(options.rounds):
                    interest = f"p{uuid.uuid4().hex[:8]}"

                    def start(role: str, boot: str, interest: str = interest, index: int = index) -> Strangers:
                        command = ([sys.executable, __file__, "--child"] if not options.no_profile or options.trace
                                   else [str(Path(sys.executable).with_name("strangers"))])
                        env = homes.env(True)
                        env.update(STRANGERS_PROFILE_OUT=str(work / f"{role}-{index}.prof"),
                                   STRANGERS_PROFILE_FROM="ready" if role == "joiner" else "advertised",
                                   STRANGERS_TRACE="1" if options.trace else "0",
                                   STRANGERS_PROFILE_CPU="0" if options.trace else "1")
                        node = Strangers.__new__(Strangers)
                        import strangers.testing as testing
                        saved = testing.strangers_command
                        testing.strangers_command = lambda: command  # type: ignore[assignment]
                        try:
                            Strangers.__init__(node, "chat", "--json", "--bootstrap", boot, "-i", interest,
                                               "--interests-only", "-v", *flags, prefix=prefix, env=env)
                        finally:
                            testing.strangers_command = saved  # type: ignore[assignment]
                        return node

                    waiting = start("waiting", addrs[index % len(addrs)])
                    joiner = None
                    try:
                        event(waiting, "advertised", timeout=60)
                        joiner = start("joiner", addrs[(index + 5) % len(addrs)])
                        ready = event(joiner, "ready", timeout=30)
                        matched = event(joiner, "matched", timeout=60)
                        event(waiting, "matched", timeout=30)
                        time.sleep(0.5)  # the dump
                        window = arrival(joiner, matched) - arrival(joiner, ready)
                    finally:
                        waiting.stop()
                        if joiner is not None:
                            joiner.stop()
                    for role, node in (("joiner", joiner), ("waiting", waiting)):
                        (work / f"{role}-{index}.log").write_text("".join(node.stderr_lines))
                    log = phases(joiner.stderr_lines)
                    entry = {"ready_to_matched": round(window, 4), "phases_ms": {}}
                    first = log.get("walk")
                    if first is not None:
                        entry["phases_ms"] = {k: round(1000 * (v - first)) for k, v in log.items()}
                    measured = work / f"joiner-{index}.prof.json"
                    if measured.exists():
                        entry["joiner"] = json.loads(measured.read_text())
                    measured = work / f"waiting-{index}.prof.json"
                    if measured.exists():
                        entry["waiting"] = json.loads(measured.read_text())
                    rounds.append(entry)
                    sys.stderr.write(json.dumps(entry) + "\n")
            finally:
                for node in network:
                    node.stop()
    finally:
        homes.close()
    result: dict = {"rounds": rounds, "flags": flags}
    if not options.no_profile and not options.trace:
        for role in ("joiner", "waiting"):
            files = [str(p) for p in sorted(work.glob(f"{role}-*.prof"))]
            if not files:
                continue
            stats = pstats.Stats(*files)
            for key in ("cumulative", "tottime"):
                stats.sort_stats(key)
                rows = []
                for func in stats.fcn_list[:options.top]:  # type: ignore[attr-defined]
                    cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
                    rows.append(f"{ct:8.3f} {tt:8.3f} {nc:7d} {Path(func[0]).name}:{func[1]}({func[2]})")
                result[f"{role}_{key}"] = rows
    result["profiles"] = str(work)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
