"""WAN timing: time to match a waiting stranger, and chat round trip, through the delay router.

    sudo python bench/wan.py [--rtts 0,50,150,300] [--runs 3] [--loss 0.01] [--jitter 0.01]
                             [--fixed] [--no-mdns]

For each round-trip time, three namespaces behind a router namespace that
holds every forwarded packet for half the round trip (``tests/netsim``'s
delay router: a TUN device; TCP and UDP, source addresses kept). Each run starts fresh
processes: a ``serve`` node, a chat node that waits (until ``advertised``),
then a chat node that joins; measured:

* ``match``: from the joiner's ``ready`` to its ``matched`` (time to match a
  waiting stranger), ``cold``: from starting the joiner's process, and
  ``start``: from starting it to its ``ready``;
* ``chat_rtt``: from ``send`` to the ``delivered`` receipt, median of
  ``--messages`` messages sent one after the other.

Default flags (mDNS on, adaptive timeouts); every node listens on its
namespace's address (``--listen``). ``--fixed`` pins the old fixed timeouts
(``STRANGERS_FIXED_TIMEOUTS=1``) for comparison. A run that does not match
within ``--give-up`` seconds counts as a failure. Needs root (namespaces,
iptables). Prints a table on stderr and one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "netsim"))
from delayproxy import PathSettings  # noqa: E402
from delayrouter import DelayRouter, NetHost, namespaces_unavailable  # noqa: E402

from strangers.testing import Strangers  # noqa: E402


def _listen(host: NetHost) -> list[str]:
    return ["--listen", f"/ip4/{host.ip}/tcp/0"]


def one_run(net: DelayRouter, *, env: dict[str, str], mdns: bool, messages: int,
            give_up: float) -> dict:
    procs: list[Strangers] = []
    extra = [] if mdns else ["--no-mdns"]
    try:
        serve = Strangers("serve", "--json", *_listen(net.hosts[0]), "--no-bootstrap", *extra,
                          prefix=net.hosts[0].prefix, env=env)
        procs.append(serve)
        bootstrap = serve.wait_for("ready", timeout=60)["addrs"][0]

        def chat(host: NetHost) -> Strangers:
            node = Strangers("chat", "--json", *_listen(host), "--bootstrap", bootstrap,
                             "-i", "jazz", *extra, prefix=host.prefix, env=env)
            procs.append(node)
            return node

        waiting = chat(net.hosts[1])
        waiting.wait_for("advertised", timeout=give_up)
        launched = time.monotonic()
        joining = chat(net.hosts[2])
        joining.wait_for("ready", timeout=60)
        try:
            joining.wait_for("matched", timeout=give_up)
            waiting.wait_for("matched", timeout=30)
        except AssertionError:
            return {"matched": False}
        ready, matched = joining.arrival_of("ready"), joining.arrival_of("matched")
        assert ready is not None and matched is not None
        rtts = []
        for index in range(messages):
            joining.send({"cmd": "send", "text": f"message {index}"})
            sent = joining.wait_for("sent", timeout=30)
            started = time.monotonic()
            joining.wait_for(lambda e, i=sent["id"]: e.get("event") == "delivered" and e.get("id") == i,
                             timeout=30)
            rtts.append(time.monotonic() - started)
        return {"matched": True, "match": matched - ready, "cold": matched - launched,
                "start": ready - launched,
                "chat_rtt": statistics.median(rtts)}
    finally:
        for proc in procs:
            proc.stop()


def spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtts", default="0,50,150,300", help="round-trip times in ms")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--jitter", type=float, default=0.01, help="seconds, each way")
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--fixed", action="store_true", help="pin the old fixed timeouts")
    parser.add_argument("--no-mdns", action="store_true")
    args = parser.parse_args()
    reason = namespaces_unavailable()
    if reason:
        sys.exit(f"bench/wan.py: {reason}")
    env = {"STRANGERS_FIXED_TIMEOUTS": "1"} if args.fixed else {}
    results = []
    for rtt_ms in (int(text) for text in args.rtts.split(",")):
        rtt = rtt_ms / 1000
        settings = PathSettings.for_rtt(rtt, jitter=min(args.jitter, rtt / 4),
                                        loss=args.loss if rtt else 0.0)
        runs = []
        for run in range(args.runs):
            with DelayRouter(settings, hosts_wanted=3, seed=run) as net:
                outcome = one_run(net, env=env, mdns=not args.no_mdns, messages=args.messages,
                                  give_up=args.give_up)
            runs.append(outcome)
            print(f"rtt {rtt_ms:>3} ms run {run + 1}: {outcome}", file=sys.stderr, flush=True)
        done = [r for r in runs if r["matched"]]
        results.append({
            "rtt_ms": rtt_ms, "settings": settings.__dict__, "runs": len(runs),
            "matched": len(done),
            "match_s": spread([r["match"] for r in done]),
            "cold_to_match_s": spread([r["cold"] for r in done]),
            "launch_to_ready_s": spread([r["start"] for r in done if "start" in r]),
            "chat_rtt_s": spread([r["chat_rtt"] for r in done]),
        })
    print(f"\n{'rtt':>6} {'matched':>8} {'match median [min-max]':>28} {'chat rtt median [min-max]':>28}",
          file=sys.stderr)
    for row in results:
        match, chat_rtt = row["match_s"], row["chat_rtt_s"]

        def show(s: dict) -> str:
            return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}] s" if s["n"] else "-"

        print(f"{row['rtt_ms']:>4}ms {row['matched']:>4}/{row['runs']:<3} {show(match):>28} "
              f"{show(chat_rtt):>28}", file=sys.stderr)
    print(json.dumps({"fixed_timeouts": args.fixed, "mdns": not args.no_mdns, "loss": args.loss,
                      "results": results}))


if __name__ == "__main__":
    main()
