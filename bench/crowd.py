"""The 50-stranger crowd: ``--people`` strangers on ``--interests`` interests, launched within a second.

    python bench/crowd.py [--servers 10] [--people 50] [--interests 5] [--seconds 120] [--first-launch]

Real processes on loopback: ``--servers`` serve nodes (the DHT), then the
crowd, each with one of the interests and ``--interests-only``, bootstrapped
round-robin through the servers. Prints one JSON object: how many matched,
how long until all had, double or asymmetric matches, and where the time
went (launch -> ready -> matched). Every stranger has its own data directory
(``bench/homes.py``): a returning user's, with the identity its previous run
minted (minted here before the launch, not timed), or with ``--first-launch``
an empty one (each node mints its proof while it searches: on one machine, 50
proofs share its cores, which no real network of 50 machines does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from homes import Homes
from loopback import crowd, start_network, stop_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--interests", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0, help="the deadline after the launch")
    parser.add_argument("--first-launch", action="store_true",
                        help="empty data directories: every stranger mints its identity proof")
    args = parser.parse_args()
    homes = Homes()
    preminted = 0.0 if args.first_launch else homes.premint(args.people)
    began = time.time()
    servers, addrs = start_network(args.servers)
    try:
        result = crowd(addrs, args.people, args.interests, args.seconds,
                       homes=homes, returning=not args.first_launch)
    finally:
        stop_all(servers)
        homes.close()
    result["returning_users"] = not args.first_launch
    result["identity_bits"] = homes.bits
    result["identities_preminted_in_s"] = round(preminted, 1)
    result["servers"] = args.servers
    result["wall_seconds"] = round(time.time() - began, 1)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
