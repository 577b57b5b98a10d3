"""Shared blocklists on the DHT: curating, publishing, subscribing (``docs/protocol.md`` §4.10).

The record codec is pure (:mod:`strangers.discovery.listrecord`), so is the
trust policy (:mod:`strangers.safety.lists`); this module adds the data
directory, the DHT and time:

* **Curators** keep their lists in ``curated-lists.json`` (the private key of
  each list, its entries and version; 0600).  Every change raises the version;
  ``publish`` signs the current version and stores it, with PUT_VALUE, at the
  K peers closest to the list's DHT key.
* **Every DHT server** checks list records before storing them
  (:class:`ListValidator`: the curator's signature, the key the record is
  stored under) and keeps a newer version only: a stale or forged record is
  refused.
* **Subscribers** (``--trust-list KEY`` or the config file) keep the newest
  verified version of each list in ``trusted-lists.json`` (so a list holds
  from the first second of the next run), ask the K closest peers for newer
  versions at start and every :data:`REFRESH_INTERVAL` seconds, and accept
  only a verified, newer version of a list they chose.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.records.validator import Validator

from strangers.crypto.peerid import peer_id_from_text
from strangers.discovery.listrecord import (
    NAMESPACE,
    ListEntry,
    ListRecord,
    decode_record,
    dht_key,
    key_from_text,
    newest,
    sign_record,
)
from strangers.errors import ConfigError, CryptoError, DiscoveryError
from strangers.safety.lists import TrustedLists

from .store import ENV_HOME, DataDir

logger = logging.getLogger(__name__)

CURATED_FILE = "curated-lists.json"
TRUSTED_FILE = "trusted-lists.json"
CONFIG_FILE = "config.toml"
REFRESH_INTERVAL = 30.0
"""Seconds between two refreshes of the trusted lists (``$STRANGERS_LIST_REFRESH``
overrides it: tests and curators checking a change)."""
ENV_REFRESH = "STRANGERS_LIST_REFRESH"
FIRST_REFRESH_WAIT = 5.0
"""How long start-up waits for the first refresh before the first search."""
FETCH_TIMEOUT = 10.0
"""A bound on one list's refresh (lookup and GET_VALUE to the closest peers)."""
MAX_TRUSTED = 64
"""Most lists one node subscribes to."""
MAX_LIST_NAME = 64


# --- every DHT server ---------------------------------------------------------------------


class ListValidator(Validator):
    """py-libp2p's record check for ``/slist/<key>``: signed by that key; newest wins."""

    def validate(self, key: str, value: bytes) -> None:
        decode_record(value, _curator_of(key))  # DiscoveryError: not stored

    def select(self, key: str, values: list[bytes]) -> int:
        best = newest(values, _curator_of(key))
        if best is None:
            raise DiscoveryError("no valid list record among the candidates")
        return best[0]


def _curator_of(key: str) -> bytes:
    prefix = f"/{NAMESPACE}/"
    if not key.startswith(prefix):
        raise DiscoveryError(f"not a list key: {key!r:.80}")
    return key_from_text(key[len(prefix):])


def install_validator(dht) -> None:
    """Let ``dht`` (a KadDHT) store and serve list records, checked."""
    dht.register_validator(NAMESPACE, ListValidator())


# --- curators -----------------------------------------------------------------------------


def _check_list_name(name: str) -> str:
    if not name or len(name) > MAX_LIST_NAME or not name.isprintable() or name != name.strip():
        raise ConfigError(f"a list name is 1 to {MAX_LIST_NAME} printable characters,"
                          f" not {name!r:.80}")
    return name


class CuratedLists:
    """The lists this user curates (``curated-lists.json`` in the data directory)."""

    def __init__(self, data: DataDir | None = None) -> None:
        self.data = data if data is not None else DataDir()
        document = self.data.read_json(CURATED_FILE, {})
        self._lists: dict[str, dict[str, Any]] = document if isinstance(document, dict) else {}

    def _save(self) -> None:
        self.data.write_json(CURATED_FILE, self._lists)

    def _get(self, name: str) -> dict[str, Any]:
        entry = self._lists.get(_check_list_name(name))
        if not isinstance(entry, dict):
            raise ConfigError(f"there is no list {name!r}; create it with: strangers list"
                              f" create {name}")
        return entry

    def _key(self, name: str) -> Ed25519PrivateKey:
        try:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self._get(name)["key"]))
        except (KeyError, ValueError, TypeError):
            raise ConfigError(f"the key of list {name!r} in {self.data.path(CURATED_FILE)}"
                              " is damaged") from None

    def create(self, name: str) -> str:
        """Create list ``name`` with a new curator key; its public key (64 hex)."""
        if _check_list_name(name) in self._lists:
            raise ConfigError(f"there is already a list {name!r} (its key: {self.public_key(name)})")
        key = Ed25519PrivateKey.generate()
        self._lists[name] = {"key": key.private_bytes_raw().hex(), "version": 1, "entries": {}}
        self._save()
        return self.public_key(name)

    def public_key(self, name: str) -> str:
        return self._key(name).public_key().public_bytes_raw().hex()

    def entries(self, name: str) -> dict[str, str]:
        entries = self._get(name).get("entries")
        return dict(entries) if isinstance(entries, dict) else {}

    def version(self, name: str) -> int:
        version = self._get(name).get("version")
        return version if type(version) is int and version >= 1 else 1

    def add(self, name: str, peer_id: str, reason: str = "") -> bool:
        """Put ``peer_id`` on the list (True: it was not there or its reason changed)."""
        try:
            peer_id_from_text(peer_id)
        except CryptoError as exc:
            raise ConfigError(str(exc)) from None
        entries = self.entries(name)
        if entries.get(peer_id) == reason:
            return False
        entries[peer_id] = reason
        self._change(name, entries)
        return True

    def remove(self, name: str, peer_id: str) -> bool:
        """Take ``peer_id`` off the list (False: it was not on it)."""
        entries = self.entries(name)
        if entries.pop(peer_id, None) is None:
            return False
        self._change(name, entries)
        return True

    def _change(self, name: str, entries: dict[str, str]) -> None:
        entry = self._get(name)
        signable = [ListEntry(peer, reason) for peer, reason in entries.items()]
        sign_record(self._key(name), self.version(name) + 1, name, signable)  # bounds check
        entry["entries"] = entries
        entry["version"] = self.version(name) + 1
        self._save()

    def record(self, name: str) -> bytes:
        """The signed record of the list's current version."""
        entries = [ListEntry(peer, reason) for peer, reason in self.entries(name).items()]
        return sign_record(self._key(name), self.version(name), name, entries)


def walk_key(key: bytes) -> bytes:
    """Where a record's holders are: the peers closest to the sha2-256 multihash of its
    key (FIND_NODE takes multihashes; a ``/slist/...`` key is not one)."""
    return b"\x12\x20" + hashlib.sha256(key).digest()


async def publish(dht, record: bytes) -> int:
    """Store ``record`` at the K peers closest to its key; how many accepted it."""
    decoded = decode_record(record)
    key = dht_key(decoded.curator).encode()
    dht.value_store.put(key, record)  # we serve it too while we run
    result = await dht.lookup(walk_key(key))
    stored = 0

    async def store(peer) -> None:
        nonlocal stored
        request = Message()
        request.type = Message.MessageType.PUT_VALUE
        request.key = key
        request.record.key = key
        request.record.value = record
        try:
            reply = await dht._rpc(peer, request, "PUT_VALUE")
        except Exception as exc:  # unreachable, reset, timeout, a refusal
            logger.debug("PUT_VALUE of list %s to %s failed: %r", decoded.key_text, peer, exc)
            return
        if reply is not None and reply.HasField("record") and reply.record.value == record:
            stored += 1

    async with trio.open_nursery() as nursery:
        for peer in result.closest:
            nursery.start_soon(store, peer)
    return stored


async def fetch(dht, curator: bytes) -> bytes | None:
    """The newest valid version (signed bytes) of ``curator``'s list the closest peers
    hold (and we)."""
    key = dht_key(curator).encode()
    found: list[bytes] = []
    local = dht.value_store.get(key)
    if local is not None:
        found.append(local.value)
    result = await dht.lookup(walk_key(key))

    async def ask(peer) -> None:
        request = Message()
        request.type = Message.MessageType.GET_VALUE
        request.key = key
        try:
            reply = await dht._rpc(peer, request, "GET_VALUE")
        except Exception as exc:
            logger.debug("GET_VALUE of list %s from %s failed: %r", curator.hex(), peer, exc)
            return
        if reply is not None and reply.HasField("record") and reply.record.key == key:
            found.append(bytes(reply.record.value))

    async with trio.open_nursery() as nursery:
        for peer in result.closest:
            nursery.start_soon(ask, peer)
    distinct = list(dict.fromkeys(found))  # servers mostly hold the same bytes: check once
    best = newest(distinct, curator)
    return None if best is None else distinct[best[0]]


def refresh_interval() -> float:
    """REFRESH_INTERVAL, or ``$STRANGERS_LIST_REFRESH`` seconds (at least 1) when set."""
    try:
        return max(1.0, float(os.environ[ENV_REFRESH]))
    except (KeyError, ValueError):
        return REFRESH_INTERVAL


# --- subscribers --------------------------------------------------------------------------


def config_file() -> Path:
    """Where the config file lives: ``$STRANGERS_HOME/config.toml`` when that is set,
    else platformdirs' user config dir (e.g. ``~/.config/strangers/config.toml``)."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home) / CONFIG_FILE
    return Path(platformdirs.user_config_dir("strangers", appauthor=False)) / CONFIG_FILE


def trusted_keys_from_config(path: Path | None = None) -> tuple[str, ...]:
    """The ``trust_lists = ["KEY", ...]`` of the config file (none when there is no file)."""
    path = config_file() if path is None else path
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return ()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    keys = document.get("trust_lists", [])
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ConfigError(f"{path}: trust_lists must be a list of list keys (strings)")
    return tuple(keys)


def parse_trusted(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    """Curator keys from what the user typed (ConfigError names a bad one)."""
    if len(keys) > MAX_TRUSTED:
        raise ConfigError(f"at most {MAX_TRUSTED} trusted lists, not {len(keys)}")
    try:
        return tuple(dict.fromkeys(key_from_text(key) for key in keys))
    except DiscoveryError as exc:
        raise ConfigError(f"--trust-list: {exc}") from None


class ListSubscriptions:
    """The lists this node trusts: cached, refreshed, asked by the matching gate."""

    def __init__(self, curators: tuple[bytes, ...], data: DataDir | None = None) -> None:
        self.data = data if data is not None else DataDir()
        self.trusted = TrustedLists(curators)
        self.refreshes = 0
        self._records: dict[bytes, bytes] = {}
        self._load_cache()

    def refuses(self, peer_id: str) -> str | None:
        """The matching gate's question: is ``peer_id`` (base58) on a trusted list?"""
        return self.trusted.refuses(peer_id)

    def _load_cache(self) -> None:
        cache = self.data.read_json(TRUSTED_FILE, {})
        if not isinstance(cache, dict):
            return
        for curator in self.trusted.curators:
            text = cache.get(curator.hex())
            if not isinstance(text, str):
                continue
            try:
                self._take(decode_record(base64.b64decode(text, validate=True), curator),
                           base64.b64decode(text))
            except (DiscoveryError, ValueError):
                logger.warning("cached list %s is damaged; ignored", curator.hex())

    def _take(self, record: ListRecord, raw: bytes) -> bool:
        if not self.trusted.offer(record.curator, record.version, record.name, record.peer_ids()):
            return False
        self._records[record.curator] = raw
        return True

    def offer_record(self, raw: bytes) -> bool:
        """Take a record from anywhere (verified here); True when it is now in force."""
        try:
            record = decode_record(raw)
        except DiscoveryError:
            return False
        changed = self._take(record, raw)
        if changed:
            self._save()
        return changed

    def _save(self) -> None:
        try:
            self.data.write_json(TRUSTED_FILE, {curator.hex(): base64.b64encode(raw).decode()
                                                for curator, raw in self._records.items()})
        except ConfigError as exc:
            logger.warning("cannot keep the trusted lists: %s", exc)

    async def refresh(self, dht) -> int:
        """Ask the DHT for newer versions of every trusted list; how many changed."""
        changed = 0
        for curator in self.trusted.curators:
            with trio.move_on_after(FETCH_TIMEOUT):
                try:
                    record = await fetch(dht, curator)
                except Exception as exc:  # a failed lookup: try again next time
                    logger.info("refreshing list %s failed: %r", curator.hex(), exc)
                    continue
                if record is not None and record != self._records.get(curator):
                    changed += self.offer_record(record)
        self.refreshes += 1
        return changed

    async def first_refresh(self, dht) -> None:
        """The refresh at start; start-up waits for it at most FIRST_REFRESH_WAIT seconds."""
        if self.trusted.curators:
            with trio.move_on_after(FIRST_REFRESH_WAIT):
                await self.refresh(dht)

    async def serve(self, dht) -> None:
        """Refresh the trusted lists every REFRESH_INTERVAL seconds, for ever."""
        while self.trusted.curators:
            await trio.sleep(refresh_interval())
            await self.refresh(dht)
