"""Shared blocklist records: signed, versioned, bounded (pure; ``docs/protocol.md`` §4.10).

A curator (a school, a community, a friend) keeps a list of peers nobody who
trusts the list should meet.  Its newest version travels as one DHT value
under the key ``/slist/<curator key, 64 hex>``::

    record = msgpack {"b": bin(body), "s": bin(64)}
    body   = msgpack {"v": 1, "k": bin(32), "n": N, "name": S, "e": [[bin(id), R], ...]}
    s      = Ed25519 signature by the curator key k over  LABEL || body

``v`` is the record format (1), ``k`` the curator's Ed25519 public key (it
must be the one the DHT key names), ``n`` the version (1..2**53; a record
replaces another of the same list only with a higher ``n``), ``name`` the
curator's name for the list (1..64 characters), ``e`` the entries: a binary
peer id (an identity or sha2-256 multihash, at most 64 bytes) and a reason
(0..MAX_REASON characters of UTF-8), peer ids distinct.  At most
``MAX_ENTRIES`` entries; a whole record is at most ``MAX_RECORD`` bytes.

The signature covers the body's exact bytes, so decoders need no canonical
form; they do check that nothing but the one map is in the body.  Decoding
raises only :class:`~strangers.errors.DiscoveryError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.peerid import peer_id_from_text, peer_id_to_text
from strangers.crypto.primitives import ed25519_sign, ed25519_verify
from strangers.crypto.wire import unpack_map
from strangers.errors import CryptoError, DiscoveryError, RemoteProtocolError

__all__ = [
    "FORMAT_VERSION",
    "LABEL",
    "MAX_ENTRIES",
    "MAX_REASON",
    "MAX_RECORD",
    "NAMESPACE",
    "ListEntry",
    "ListRecord",
    "decode_record",
    "dht_key",
    "key_from_text",
    "newest",
    "sign_record",
]

NAMESPACE: Final = "slist"
LABEL: Final = b"strangers/v1/list\x00"
FORMAT_VERSION: Final = 1
MAX_ENTRIES: Final = 2000
MAX_REASON: Final = 200
MAX_NAME: Final = 64
MAX_RECORD: Final = 1024 * 1024 - 1024
"""Below py-libp2p's 1 MiB DHT record limit (``MAX_RECORD_SIZE``)."""
MAX_VERSION: Final = 2**53
_MAX_PEER_ID: Final = 64


@dataclass(frozen=True)
class ListEntry:
    """A peer on a list (``peer_id`` in base58) and the curator's reason."""

    peer_id: str
    reason: str = ""


@dataclass(frozen=True)
class ListRecord:
    """One verified version of a curator's list."""

    curator: bytes
    version: int
    name: str
    entries: tuple[ListEntry, ...]

    @property
    def key_text(self) -> str:
        """The list's public key as users type it (64 hex digits)."""
        return self.curator.hex()

    def peer_ids(self) -> frozenset[str]:
        return frozenset(entry.peer_id for entry in self.entries)


def key_from_text(text: object) -> bytes:
    """A list key as typed by a user (64 hex digits, optionally ``slist:`` before)."""
    if type(text) is not str:
        raise DiscoveryError(f"a list key is 64 hex digits, not {text!r:.80}")
    value = text.strip().lower().removeprefix("slist:")
    if len(value) != 64:
        raise DiscoveryError(f"a list key is 64 hex digits, not {text!r:.80}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DiscoveryError(f"a list key is 64 hex digits, not {text!r:.80}") from None


def dht_key(curator: bytes) -> str:
    """The DHT key of a curator's list: ``/slist/<64 hex>``."""
    return f"/{NAMESPACE}/{curator.hex()}"


def _check_name(name: object) -> str:
    if type(name) is not str or not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise DiscoveryError(f"a list name is 1 to {MAX_NAME} printable characters,"
                             f" not {name!r:.80}")
    return name


def sign_record(curator: Ed25519PrivateKey, version: int, name: str,
                entries: Iterable[ListEntry]) -> bytes:
    """The signed record of version ``version`` of a list (``DiscoveryError`` if out of bounds)."""
    entries = tuple(entries)
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise DiscoveryError(f"a list version is 1 to {MAX_VERSION}, not {version!r:.80}")
    if len(entries) > MAX_ENTRIES:
        raise DiscoveryError(f"a list holds at most {MAX_ENTRIES} peers, not {len(entries)}")
    wire_entries = []
    for entry in entries:
        try:
            peer = peer_id_from_text(entry.peer_id)
        except CryptoError as exc:
            raise DiscoveryError(str(exc)) from None
        if len(entry.reason) > MAX_REASON:
            raise DiscoveryError(f"a reason is at most {MAX_REASON} characters")
        wire_entries.append([peer, entry.reason])
    body = _pack({"v": FORMAT_VERSION, "k": curator.public_key().public_bytes_raw(),
                  "n": version, "name": _check_name(name), "e": wire_entries})
    record = _pack({"b": body, "s": ed25519_sign(curator, LABEL + body)})
    if len(record) > MAX_RECORD:
        raise DiscoveryError(f"the list's record would be {len(record)} bytes, more than"
                             f" {MAX_RECORD}")
    return record


def _pack(obj: dict[str, Any]) -> bytes:
    return cast(bytes, msgpack.packb(obj, use_bin_type=True))


def decode_record(data: object, curator: bytes | None = None) -> ListRecord:
    """Verify and decode a record (of ``curator``'s list, when given).

    Raises :class:`~strangers.errors.DiscoveryError` for anything malformed,
    unsigned, forged or belonging to another list.
    """
    if type(data) is not bytes or len(data) > MAX_RECORD:
        raise DiscoveryError(f"a list record is at most {MAX_RECORD} bytes")
    try:
        outer = unpack_map(data, what="list record", max_bytes=MAX_RECORD, max_container=4)
    except RemoteProtocolError as exc:
        raise DiscoveryError(f"bad list record: {exc}") from None
    if set(outer) != {"b", "s"} or type(outer["b"]) is not bytes or type(outer["s"]) is not bytes:
        raise DiscoveryError("a list record is {\"b\": body, \"s\": signature}")
    body_bytes, signature = outer["b"], outer["s"]
    try:
        body = _unpack_body(body_bytes)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, RecursionError) as exc:
        raise DiscoveryError(f"bad list record body: {exc}") from None
    if type(body) is not dict or set(body) != {"v", "k", "n", "name", "e"}:
        raise DiscoveryError("a list record's body has the fields v, k, n, name and e")
    if body["v"] != FORMAT_VERSION or type(body["v"]) is not int:
        raise DiscoveryError(f"unknown list record format {body['v']!r:.40}")
    key = body["k"]
    if type(key) is not bytes or len(key) != 32:
        raise DiscoveryError("a list record's curator key is 32 bytes")
    if curator is not None and key != curator:
        raise DiscoveryError("the record belongs to another list (its curator key differs)")
    try:
        ed25519_verify(key, signature, LABEL + body_bytes)
    except CryptoError:
        raise DiscoveryError("the list record's signature is not the curator's: forged") from None
    version = body["n"]
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise DiscoveryError(f"a list version is 1 to {MAX_VERSION}, not {version!r:.40}")
    name = _check_name(body["name"])
    raw_entries = body["e"]
    if type(raw_entries) is not list or len(raw_entries) > MAX_ENTRIES:
        raise DiscoveryError(f"a list holds at most {MAX_ENTRIES} entries")
    entries = []
    seen: set[bytes] = set()
    for item in raw_entries:
        if (type(item) is not list or len(item) != 2 or type(item[0]) is not bytes
                or len(item[0]) > _MAX_PEER_ID or type(item[1]) is not str
                or len(item[1]) > MAX_REASON):
            raise DiscoveryError("a list entry is [peer id bytes, reason]")
        if item[0] in seen:
            raise DiscoveryError("a peer appears twice on the list")
        seen.add(item[0])
        text = peer_id_to_text(item[0])
        try:
            peer_id_from_text(text)
        except CryptoError as exc:
            raise DiscoveryError(f"a list entry is not a peer id: {exc}") from None
        entries.append(ListEntry(text, item[1]))
    return ListRecord(key, version, name, tuple(entries))


def _unpack_body(data: bytes) -> object:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=MAX_RECORD,
                                max_array_len=MAX_ENTRIES, max_map_len=8,
                                max_str_len=MAX_RECORD, max_bin_len=MAX_RECORD, max_ext_len=0)
    unpacker.feed(data)
    obj = unpacker.unpack()
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return obj
    raise ValueError("bytes after the body's map")


def newest(records: Iterable[bytes], curator: bytes) -> tuple[int, ListRecord] | None:
    """The index and record of the newest valid version among ``records`` (None: none valid).

    Ties go to the first one; invalid or foreign records are skipped.
    """
    best: tuple[int, ListRecord] | None = None
    for index, data in enumerate(records):
        try:
            record = decode_record(data, curator)
        except DiscoveryError:
            continue
        if best is None or record.version > best[1].version:
            best = (index, record)
    return best
