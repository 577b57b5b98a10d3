"""The 50-stranger crowd: ``--people`` strangers on ``--interests`` interests, launched within a second.

    python bench/crowd.py [--servers 10] [--people 50] [--interests 5] [--seconds 120]

Real processes on loopback: ``--servers`` serve nodes (the DHT), then the
crowd, each with one of the interests and ``--interests-only``, bootstrapped
round-robin through the servers. Prints one JSON object: how many matched,
how long until all had, double or asymmetric matches, and where the time
went (launch -> ready -> matched). The same scenario as ``bench/run.py``'s
crowd, on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from loopback import crowd, start_network, stop_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--interests", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0, help="the deadline after the launch")
    args = parser.parse_args()
    began = time.time()
    servers, addrs = start_network(args.servers)
    try:
        result = crowd(addrs, args.people, args.interests, args.seconds)
    finally:
        stop_all(servers)
    result["servers"] = args.servers
    result["wall_seconds"] = round(time.time() - began, 1)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
