"""``strangers``: the command line. The one place that prints errors and picks exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from strangers import __version__, lean_imports
from strangers.errors import StrangersError

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
"""A startup error (bad option, port in use...), or an unexpected failure of the node."""
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangers",
        description="Talk to strangers who share your interests: no account, no central "
                    "server, end-to-end encrypted.",
    )
    parser.add_argument("--version", action="version", version=f"strangers {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def network_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--listen", action="append", metavar="MULTIADDR",
                       help="address to listen on (default /ip4/0.0.0.0/tcp/0); repeatable")
        p.add_argument("--bootstrap", action="append", metavar="MULTIADDR",
                       help="a peer to join the network through (…/p2p/<id>); repeatable; "
                            "replaces the public default list")
        p.add_argument("--no-bootstrap", action="store_true",
                       help="do not dial any bootstrap peer (local network only)")
        p.add_argument("--no-mdns", action="store_true",
                       help="do not look for strangers on the local network (mDNS)")
        p.add_argument("--identity", type=Path, metavar="FILE",
                       help="keep this node's key in FILE (created 0600); default: a new one every run")
        p.add_argument("--json", action="store_true",
                       help="events as JSON lines on stdout, commands as JSON lines on stdin")
        p.add_argument("--behind-nat", action="store_true",
                       help="take this node as unreachable from outside (skip the AutoNAT check): "
                            "strangers reach it through relays")
        p.add_argument("--no-relay", action="store_true",
                       help="never relay circuits for strangers behind a NAT (on by default once "
                            "this node is reachable)")
        p.add_argument("-v", "--verbose", action="count", default=0,
                       help="log what the node does to stderr (twice: the library too)")

    chat = sub.add_parser("chat", help="meet a stranger and chat")
    chat.add_argument("-i", "--interest", action="append", default=[], metavar="INTEREST",
                      help="something you like; strangers who share one are found first; repeatable")
    chat.add_argument("--random-after", type=float, default=10.0, metavar="S",
                      help="seconds of looking for common interests before accepting anyone (default 10)")
    chat.add_argument("--interests-only", action="store_true",
                      help="never fall back to a random stranger")
    chat.add_argument("--filter-words", type=Path, metavar="FILE",
                      help="hide a stranger's messages holding a word or phrase of FILE (one a"
                           " line; default: filter-words.txt in the data directory); /reveal"
                           " shows the last one")
    chat.add_argument("--trust-list", action="append", default=[], metavar="KEY",
                      help="never match anyone on this shared blocklist (its curator's key);"
                           " repeatable; also trust_lists = [...] in the config file")
    chat.add_argument("--adult", action="store_true",
                      help="the adult lane: meet only strangers who chose it too (nobody can check "
                           "anyone's age: see docs/threat-model.md)")
    chat.add_argument("--lang", metavar="CODE", default=None,
                      help="your language (ISO 639-1, like en or fr): strangers who speak it"
                           " first, anyone after the random fallback (default: your locale's;"
                           " --lang '' for none); /lang CODE changes it")
    chat.add_argument("--questions", action="store_true",
                      help="also discuss questions of people who watch (Omegle's spy mode):"
                           " you are told the question and that someone watches")
    chat.add_argument("--hide-ip", action="store_true",
                      help="privacy mode: strangers reach you only through a relay, never directly "
                           "(the relay still sees your IP address)")
    network_options(chat)

    web = sub.add_parser("web", help="chat in a page of your browser (served from this computer only)",
                         description="Runs the node and serves the chat as a page on 127.0.0.1, "
                                     "opened in your browser; every option of `chat` works here too.")
    web.add_argument("--port", type=int, default=0, metavar="PORT",
                     help="serve the page on 127.0.0.1:PORT (default: a free port)")
    web.add_argument("--no-browser", action="store_true",
                     help="do not open the browser; open the printed address yourself")
    for action in chat._actions:  # the options of `chat`, --json aside (the page is the interface)
        if action.dest not in ("help", "json"):
            web._add_action(action)

    lobby = sub.add_parser("lobby", help="join the public room of one interest and talk with "
                                          "everyone in it")
    lobby.add_argument("interest", metavar="INTEREST", help="the interest whose room to join")
    lobby.add_argument("--adult", action="store_true",
                       help="the adult lane's room of this interest (separate from the general one; "
                            "nobody can check anyone's age)")
    network_options(lobby)
    ask = sub.add_parser("ask", help="ask a question and watch two strangers discuss it")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("-i", "--interest", action="append", default=[], metavar="INTEREST",
                     help="ask strangers who like this first; repeatable")
    ask.add_argument("--random-after", type=float, default=10.0, metavar="S",
                     help="seconds of looking for common interests before asking anyone")
    ask.add_argument("--interests-only", action="store_true",
                     help="never ask strangers without a common interest")
    network_options(ask)

    serve = sub.add_parser("serve", help="help the network: serve the DHT, chat with no one")
    network_options(serve)

    ident = sub.add_parser("id", help="print a peer id (of --identity FILE when given)")
    ident.add_argument("--identity", type=Path, metavar="FILE")
    ident.add_argument("--json", action="store_true", help='print {"peer_id": "..."}')
    from . import tools

    tools.add_parsers(sub, network_options)

    blocked = sub.add_parser("blocked", help="list the strangers you blocked")
    blocked.add_argument("--json", action="store_true", help="as one JSON object")
    unblock = sub.add_parser("unblock", help="forget the block of a stranger")
    unblock.add_argument("peer_id", metavar="PEER_ID")
    from . import contacts_cli

    contacts_cli.add_parsers(sub, network_options)
    return parser


def _configure_logging(verbose: int) -> None:
    from strangers.node import quiet_library_logs

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,  # py-libp2p installs handlers of its own at import
    )
    if verbose < 1:
        logging.getLogger("strangers").setLevel(logging.CRITICAL)
    quiet_library_logs(logging.INFO if verbose >= 2 else logging.CRITICAL)


def _connect_early(args: argparse.Namespace) -> None:
    """Start the TCP connects to the peers this node dials first (``strangers.preconnect``)."""
    if getattr(args, "no_bootstrap", True):
        return
    from strangers import preconnect
    from strangers.home import default_home

    preconnect.start(preconnect.launch_addrs(args.bootstrap, default_home(),
                                             _early_search_keys(args)))


def _early_search_keys(args: argparse.Namespace) -> list[bytes]:
    """The first search's keys as ``NodeConfig.first_search_keys`` gives them, from the
    arguments alone (the config needs the node's imports); none if they do not parse
    (the config says why, a moment later)."""
    if args.command not in ("chat", "web", "ask"):
        return []
    from strangers.discovery.interests import normalize_interests
    from strangers.discovery.language import normalize_lang
    from strangers.discovery.topics import ADULT_LANE, GENERAL_LANE, first_search_keys

    try:
        asking = args.command == "ask"
        return first_search_keys(
            normalize_interests(getattr(args, "interest", None) or ()), now=time.time(),
            lane=ADULT_LANE if getattr(args, "adult", False) else GENERAL_LANE,
            lang="" if asking else normalize_lang(_lang(args)), asking=asking)
    except (StrangersError, ValueError):
        return []


def _config_from(args: argparse.Namespace):
    from strangers.node import NodeConfig

    if args.no_bootstrap and args.bootstrap:
        raise StrangersConfigConflict("--bootstrap and --no-bootstrap cannot be used together")
    bootstrap = () if args.no_bootstrap else (tuple(args.bootstrap) if args.bootstrap else None)
    chat = args.command in ("chat", "web", "ask")
    asking = args.command == "ask"
    if asking and not args.question.strip():
        raise StrangersConfigConflict("strangers ask needs a question, e.g. strangers ask"
                                      " \"Is a hot dog a sandwich?\"")
    return NodeConfig(
        question=args.question if asking else "",
        questions=bool(getattr(args, "questions", False)),
        interests=tuple(args.interest) if chat else (),
        chat=chat,
        listen=tuple(args.listen) if args.listen else NodeConfig.listen,
        bootstrap=bootstrap,
        identity_file=args.identity,
        mdns=not args.no_mdns,
        random_after=args.random_after if chat else 10.0,
        interests_only=args.interests_only if chat else False,
        behind_nat=args.behind_nat,
        hide_ip=getattr(args, "hide_ip", False),
        relay=not args.no_relay,
        trust_lists=_trusted_lists(args) if chat else (),
        filter_words=getattr(args, "filter_words", None),
        adult=bool(getattr(args, "adult", False)),
        lang=_lang(args) if args.command in ("chat", "web") else "",
    )


def _lang(args: argparse.Namespace) -> str:
    """--lang, else the locale's language (LC_ALL, LC_MESSAGES, LANG; "" for C/POSIX)."""
    from strangers.discovery.language import lang_of_locale

    if args.lang is not None:
        return args.lang
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return lang_of_locale(value)
    return ""


def _trusted_lists(args: argparse.Namespace) -> tuple[str, ...]:
    """--trust-list keys, then the config file's (``strangers.node.lists.config_file``)."""
    from strangers.node import trusted_keys_from_config

    return tuple(dict.fromkeys([*getattr(args, "trust_list", []), *trusted_keys_from_config()]))


class StrangersConfigConflict(StrangersError):
    """Two options that exclude each other."""


def _print_id(args: argparse.Namespace) -> int:
    from strangers.node import fresh_identity, load_or_create_identity

    identity = load_or_create_identity(args.identity) if args.identity else fresh_identity()
    if args.json:
        print(json.dumps({"peer_id": identity.peer_id.to_base58()}))
    else:
        print(identity.peer_id.to_base58())
    return EXIT_OK


def _print_blocked(args: argparse.Namespace) -> int:
    import time

    from strangers.node import read_blocks

    from .format import blocks_to_json, format_blocks

    blocks = read_blocks()
    print(json.dumps(blocks_to_json(blocks)) if args.json else format_blocks(blocks, time.time()))
    return EXIT_OK


def _unblock(args: argparse.Namespace) -> int:
    from strangers.node import unblock

    if unblock(args.peer_id):
        print(f"Unblocked {args.peer_id}.")
        return EXIT_OK
    _write_line(sys.stderr, f"strangers: error: {args.peer_id} is not blocked")
    return EXIT_ERROR


def format_fatal(exc: BaseException) -> str:
    """The one line for a failure that stopped the program (after ``strangers: error: ``)."""
    leaves = _leaves(exc)  # trio nurseries wrap what their tasks raise, maybe several
    more = f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
    first = next((leaf for leaf in leaves if isinstance(leaf, StrangersError)), leaves[0])
    if isinstance(first, StrangersError):
        return f"{first}{more}"
    detail = str(first).splitlines()[0][:200] if str(first).strip() else ""
    return (f"unexpected {type(first).__name__}{': ' + detail if detail else ''}{more}"
            " (a bug in strangers)")


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        found = [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
        return found or [exc]
    return [exc]


def _write_line(stream, line: str) -> None:
    """Write one line; a closed pipe or terminal is not worth a traceback."""
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # EPIPE, EIO, or the stream is closed
        pass


def report_failure(exc: BaseException, *, json_mode: bool) -> int:
    """The last resort: anything that stopped the program becomes one line and an exit code.

    A StrangersError is a message for the user; anything else is a bug, told
    in one line (its traceback is logged at debug level only).  In ``--json``
    mode the same message also comes as an ``error`` event on stdout.
    """
    if not isinstance(exc, StrangersError):
        logger.debug("unexpected failure", exc_info=exc)
    message = format_fatal(exc)
    if json_mode:
        _write_line(sys.stdout, json.dumps({"event": "error", "message": message},
                                           ensure_ascii=False))
    _write_line(sys.stderr, f"strangers: error: {message}")
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    json_mode = bool(getattr(args, "json", False))
    try:
        if args.command == "id":
            return _print_id(args)
        if args.command == "verify-report":
            from .tools import run_verify_report

            return run_verify_report(args)
        if args.command == "list":
            from .tools import run_list

            return run_list(args)
        if args.command == "blocked":
            return _print_blocked(args)
        if args.command == "unblock":
            return _unblock(args)
        if args.command == "contacts":
            from .contacts_cli import run_contacts

            return run_contacts(args)
        _connect_early(args)  # before the imports below: the seed's TCP handshake meanwhile
        _configure_logging(args.verbose)
        config = _config_from(args)
        if args.command == "contact":
            from .contacts_cli import contact_node_config

            config = contact_node_config(args, config)
        if args.command == "web":
            from .web import run_web

            return run_web(config, port=args.port, open_browser=not args.no_browser)
        if args.command == "lobby":
            from .lobby import run_lobby_session

            return run_lobby_session(config, args.interest, config.lane, json_mode=json_mode)
        from .session import run_session

        return run_session(config, json_mode=json_mode)
    except StrangersError as exc:  # before the node ran: a startup error, stderr only
        _write_line(sys.stderr, f"strangers: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 - the one last-resort handler
        if isinstance(exc, SystemExit):
            raise
        if _only_interrupts(exc):
            return EXIT_INTERRUPTED
        return report_failure(exc, json_mode=json_mode)


def _only_interrupts(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


def entry() -> None:
    """Console-script entry point: never a traceback, always an exit code."""
    # Before anything imports py-libp2p: leave out its transports we never run
    # (a third of its import time; see strangers.lean_imports).
    lean_imports.install()
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # Threads blocked on stdin (the prompt's or the line reader's, abandoned on
    # quit) hold its lock: a normal interpreter shutdown would then abort with
    # "Fatal Python error: could not acquire lock for <stdin>". Leave at once.
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
