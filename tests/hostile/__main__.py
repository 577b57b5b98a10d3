"""Run one attack by hand (from ``tests/``).

``python -m hostile ATTACK VICTIM_MULTIADDR -i INTEREST [--chat ID] [--handshake N]``
"""

from __future__ import annotations

import argparse
import json

import trio

from .attacks import ATTACKS, Target
from .peer import DEFAULT_CHAT_PROTOCOL, DEFAULT_HANDSHAKE_VERSION, open_hostile_peer


async def main(args: argparse.Namespace) -> None:
    target = Target(args.victim, args.interest, args.chat, args.handshake)
    async with open_hostile_peer() as peer:
        outcome = await ATTACKS[args.attack](peer, target)
    print(json.dumps(outcome.__dict__))


def entry() -> None:
    parser = argparse.ArgumentParser(prog="python -m hostile")
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("victim", help="a multiaddr with /p2p/<id> from the victim's ready event")
    parser.add_argument("-i", "--interest", required=True)
    parser.add_argument("--chat", default=DEFAULT_CHAT_PROTOCOL)
    parser.add_argument("--handshake", type=int, default=DEFAULT_HANDSHAKE_VERSION)
    trio.run(main, parser.parse_args())


if __name__ == "__main__":
    entry()
