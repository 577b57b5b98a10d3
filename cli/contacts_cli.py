"""``strangers contacts`` (list, remove) and ``strangers contact NAME`` (find a kept contact again)."""

from __future__ import annotations

import argparse
import json
import time


def add_parsers(sub, network_options) -> None:
    """Register ``contacts`` and ``contact`` on ``sub`` (argparse subparsers)."""
    contacts = sub.add_parser("contacts", help="the strangers you kept in touch with (/keep)")
    contacts.add_argument("--remove", metavar="NAME", help="forget this contact")
    contacts.add_argument("--json", action="store_true", help="one JSON object per contact")
    contact = sub.add_parser("contact", help="find a kept contact again and chat")
    contact.add_argument("name", metavar="NAME")
    network_options(contact)


def format_contact(name: str, peer_id: str, created: int, interests: tuple[str, ...]) -> str:
    """One line of ``strangers contacts``."""
    day = time.strftime("%Y-%m-%d", time.localtime(created))
    liked = f", you both liked {', '.join(interests)}" if interests else ""
    return f"{name}  (kept {day}{liked}; their id ...{peer_id[-8:]})"


def run_contacts(args: argparse.Namespace) -> int:
    from strangers.node import ContactBook

    book = ContactBook()
    if args.remove:
        book.remove(args.remove)  # ConfigError: main prints it, exit 1
        print(f"Forgot {args.remove}.")
        return 0
    contacts = book.all()
    for contact in contacts:
        if args.json:
            print(json.dumps({"name": contact.name, "peer_id": contact.peer_id,
                              "created": contact.created, "interests": list(contact.interests)},
                             ensure_ascii=False))
        else:
            print(format_contact(contact.name, contact.peer_id, contact.created, contact.interests))
    if not contacts and not args.json:
        print("No contacts yet. In a chat, /keep offers the stranger to stay in touch;"
              " if you both do, they are saved here.")
    return 0


def contact_node_config(args: argparse.Namespace, base):
    """The node config that looks for the contact ``args.name`` only (network options from ``base``)."""
    from strangers.node import ContactBook, contact_config

    contact = ContactBook().get(args.name)
    return contact_config(contact, listen=base.listen, bootstrap=base.bootstrap, mdns=base.mdns,
                          behind_nat=base.behind_nat, relay=base.relay)
