"""Contacts kept by mutual consent (``docs/protocol.md`` §6.12), in ``contacts.json``.

Each contact is a name the user chose and what :mod:`strangers.discovery.contact`
agreed inside the encrypted chat: our own key for this contact (a fresh
Ed25519 key, never used for anything else), the other's long-term peer id and
the one-time secret. The file lives in the data directory
(:class:`~strangers.node.store.DataDir`: 0600, written atomically) and holds
private keys: it never leaves this computer.

``strangers contact NAME`` turns a contact into a :class:`NodeConfig` (see
:func:`contact_config`): that key as the node's identity, the rendezvous
derived from the secret as its only interest, no random fallback, and
``expect_peer`` so that nobody but the contact is matched.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from strangers.discovery.contact import AgreedContact, rendezvous_interest
from strangers.errors import ConfigError

from .config import NodeConfig
from .store import DataDir

CONTACTS_FILE = "contacts.json"
MAX_CONTACTS = 1000
MAX_NAME = 64
_NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,64}$")


@dataclass(frozen=True)
class SavedContact:
    """One contact as the user sees it."""

    name: str
    peer_id: str
    """The other's long-term peer id."""
    created: int
    interests: tuple[str, ...] = ()
    """The interests the two had in common when they met (a reminder)."""
    our_key: bytes = b""
    secret: bytes = b""

    @property
    def rendezvous(self) -> str:
        return rendezvous_interest(self.secret)


def check_name(name: object) -> str:
    """A contact name: 1..64 characters, no control characters or slashes (ConfigError)."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ConfigError(f"a contact name is 1 to {MAX_NAME} characters without control"
                          f" characters or slashes, got {name!r:.80}")
    return name.strip()


class ContactBook:
    """The user's contacts (``contacts.json`` in the data directory)."""

    def __init__(self, data: DataDir | None = None) -> None:
        self.data = data if data is not None else DataDir()

    def all(self) -> list[SavedContact]:
        """Every contact, oldest first; entries that do not parse are skipped."""
        document = self.data.read_json(CONTACTS_FILE, {})
        entries = document.get("contacts", {}) if isinstance(document, dict) else {}
        contacts = []
        for name, entry in entries.items() if isinstance(entries, dict) else ():
            try:
                contacts.append(SavedContact(
                    name=check_name(name), peer_id=str(entry["peer_id"]),
                    created=int(entry["created"]),
                    interests=tuple(str(i) for i in entry.get("interests", ())),
                    our_key=bytes.fromhex(entry["key"]), secret=bytes.fromhex(entry["secret"])))
            except (ConfigError, KeyError, TypeError, ValueError, AttributeError):
                continue
        return sorted(contacts, key=lambda contact: contact.created)

    def get(self, name: str) -> SavedContact:
        for contact in self.all():
            if contact.name == name:
                return contact
        raise ConfigError(f"no contact named {name!r} (strangers contacts lists them)")

    def free_name(self, base: str = "stranger") -> str:
        """``base``, or ``base-2``, ``base-3``... whichever no contact has yet."""
        taken = {contact.name for contact in self.all()}
        if base not in taken:
            return base
        count = 2
        while f"{base}-{count}" in taken:
            count += 1
        return f"{base}-{count}"

    def add(self, name: str, agreed: AgreedContact, interests: tuple[str, ...] = (),
            now: float | None = None) -> SavedContact:
        """Save ``agreed`` as ``name`` (a taken name gets a suffix); the saved contact."""
        contacts = self.all()
        if len(contacts) >= MAX_CONTACTS:
            raise ConfigError(f"you have {len(contacts)} contacts already; remove some first")
        name = self.free_name(check_name(name))
        saved = SavedContact(name, agreed.their_peer_id, int(time.time() if now is None else now),
                             interests, agreed.our_key, agreed.secret)
        self._write([*contacts, saved])
        return saved

    def remove(self, name: str) -> None:
        contacts = self.all()
        kept = [contact for contact in contacts if contact.name != name]
        if len(kept) == len(contacts):
            raise ConfigError(f"no contact named {name!r}")
        self._write(kept)

    def _write(self, contacts: list[SavedContact]) -> None:
        self.data.write_json(CONTACTS_FILE, {"version": 1, "contacts": {
            contact.name: {"peer_id": contact.peer_id, "created": contact.created,
                           "interests": list(contact.interests), "key": contact.our_key.hex(),
                           "secret": contact.secret.hex()}
            for contact in contacts}})


def contact_config(contact: SavedContact, **network) -> NodeConfig:
    """A chat node that looks for ``contact`` only: its key, its rendezvous, nobody else."""
    return NodeConfig(interests=(contact.rendezvous,), interests_only=True, lang="",
                      identity_seed=contact.our_key, expect_peer=contact.peer_id,
                      contact_name=contact.name, auto_next=False, **network)
