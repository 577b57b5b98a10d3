"""Subcommands that run no chat: ``verify-report``, ``list ...`` and ``id --json``.

Each ``run_*`` returns an exit code; errors are :class:`StrangersError`s that
``cli/main.py`` turns into one line on stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_OK = 0
EXIT_BAD_REPORT = 1


def add_parsers(sub, network_options) -> None:
    """Register the subcommands of this module on ``sub`` (argparse subparsers)."""
    verify = sub.add_parser("verify-report", help="check that a report file is intact")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.add_argument("--json", action="store_true", help="the result as one JSON object")

    lists = sub.add_parser("list", help="keep a shared blocklist that others can subscribe to")
    actions = lists.add_subparsers(dest="list_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a list (a curator key in the data dir)")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help='print {"key": "..."}')
    add = actions.add_parser("add", help="put a peer on a list")
    add.add_argument("name")
    add.add_argument("peer_id", metavar="PEER_ID")
    add.add_argument("--reason", default="", metavar="TEXT")
    remove = actions.add_parser("remove", help="take a peer off a list")
    remove.add_argument("name")
    remove.add_argument("peer_id", metavar="PEER_ID")
    show = actions.add_parser("show", help="print a list's key, version and entries")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    publish = actions.add_parser("publish", help="store the list's newest version on the DHT")
    publish.add_argument("name")
    network_options(publish)


def run_verify_report(args: argparse.Namespace) -> int:
    from strangers.node import verify_report_file

    report = verify_report_file(args.file)  # ReportError: main prints why, exit 1
    if args.json:
        print(json.dumps({"intact": True, "stranger": report.stranger,
                          "reporter": report.reporter, "messages": len(report.messages),
                          "reason": report.reason, "created": report.created},
                         ensure_ascii=False))
        return EXIT_OK
    seqs = (f" (the stranger's texts {report.messages[0].seq} to {report.messages[-1].seq})"
            if report.messages else "")
    print(f"intact: {len(report.messages)} messages{seqs} from {report.stranger},"
          f" each signed by that stranger; report signed by {report.reporter}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from strangers.node import CuratedLists

    lists = CuratedLists()
    name = args.name
    match args.list_command:
        case "create":
            key = lists.create(name)
            if args.json:
                print(json.dumps({"key": key}))
            else:
                print(key)
        case "add":
            changed = lists.add(name, args.peer_id, args.reason)
            print(f"{args.peer_id} {'is now' if changed else 'was already'} on {name!r}"
                  f" (version {lists.version(name)}; publish to share it)")
        case "remove":
            if not lists.remove(name, args.peer_id):
                print(f"{args.peer_id} was not on {name!r}")
            else:
                print(f"{args.peer_id} is off {name!r} (version {lists.version(name)};"
                      " publish to share it)")
        case "show":
            entries = lists.entries(name)
            if args.json:
                print(json.dumps({"key": lists.public_key(name), "version": lists.version(name),
                                  "entries": [{"peer_id": peer, "reason": reason}
                                              for peer, reason in entries.items()]},
                                 ensure_ascii=False))
            else:
                print(f"{name}: key {lists.public_key(name)}, version {lists.version(name)},"
                      f" {len(entries)} peers")
                for peer, reason in entries.items():
                    print(f"  {peer}" + (f"  {reason}" if reason else ""))
        case "publish":
            return _publish(args, lists)
    return EXIT_OK


def _publish(args: argparse.Namespace, lists) -> int:
    import trio

    from strangers.node import NodeConfig, open_node
    from strangers.node import publish_list as publish

    from .main import StrangersConfigConflict

    record = lists.record(args.name)  # ConfigError before any network work
    if args.no_bootstrap and args.bootstrap:
        raise StrangersConfigConflict("--bootstrap and --no-bootstrap cannot be used together")
    bootstrap = () if args.no_bootstrap else (tuple(args.bootstrap) if args.bootstrap else None)
    config = NodeConfig(chat=False, bootstrap=bootstrap, mdns=not args.no_mdns,
                        listen=tuple(args.listen) if args.listen else NodeConfig.listen,
                        identity_file=args.identity, behind_nat=args.behind_nat, relay=False)

    async def main() -> int:
        async with open_node(config) as node:
            if args.no_bootstrap and not args.no_mdns:
                await trio.sleep(MDNS_WAIT)  # let local peers find us first
            stored = await publish(node.dht, record)
            await node.quit()
        return stored

    stored = trio.run(main)
    version = lists.version(args.name)
    if args.json:
        print(json.dumps({"key": lists.public_key(args.name), "version": version,
                          "stored": stored}))
    if not stored:
        from strangers.errors import StrangersError

        raise StrangersError(f"no DHT server stored version {version} of {args.name!r}"
                             " (is a --bootstrap peer reachable?)")
    if not args.json:
        print(f"published version {version} of {args.name!r} at {stored} DHT servers"
              f" (key {lists.public_key(args.name)})")
    return EXIT_OK


MDNS_WAIT = 5.0
