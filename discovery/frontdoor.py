"""The front door, its pure part: the rendezvous key and the cache of known servers.

A strangers *server* is a reachable strangers node that serves our own DHT.
Newcomers find servers through the public libp2p DHT: every reachable server
provides one well-known key there (:func:`rendezvous_key`), republished every
:data:`REPUBLISH_SECONDS` as the Kademlia spec asks; a newcomer makes one
lookup of it at launch. Servers it met are kept in :class:`ServerCache` (the
user's ``servers.json``) and tried first next time, before the public network,
as BitTorrent's DHT keeps its nodes between runs.

Pure: times are Unix seconds passed in; the cache is a value turned to and
from JSON documents, and any damaged document reads as an empty cache.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

RENDEZVOUS_NAME = "strangers/v1/servers"
"""The fixed string whose CID is the rendezvous key on the public DHT."""
REPUBLISH_SECONDS = 22 * 3600
"""How often a server provides the rendezvous key again (the spec's 22 h, against 48 h expiry)."""
MAX_SERVERS = 64
"""Servers kept in the cache (the newest seen)."""
MAX_ADDRS = 8
"""Addresses kept per cached server."""
MAX_ADDR_CHARS = 256
MAX_AGE_SECONDS = 30 * 24 * 3600
"""A server not seen for this long is dropped from the cache."""
CACHE_VERSION = 1
SERVERS_FILE = "servers.json"
"""The cache's file in the user's data directory."""
CACHE_TRIES = 8
"""Cached servers dialled at launch (:meth:`ServerCache.first_tries`)."""
CLOSEST_TRIES = 4
"""Of those, how many are the ones closest to the keys of the launch's first search: its
first walk asks them over connections made during the launch (``strangers.preconnect``),
not new ones (``docs/scale.md`` (e)); the newest cached servers fill the rest (the most
likely to be up)."""
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_CID_V1_RAW = bytes([0x01, 0x55])


def rendezvous_key() -> bytes:
    """The DHT key (a sha2-256 multihash) every strangers server provides on the public DHT."""
    return bytes([0x12, 0x20]) + hashlib.sha256(RENDEZVOUS_NAME.encode("utf-8")).digest()


def rendezvous_cid() -> str:
    """The same key as a CIDv1 (raw codec, base32): what other libp2p tools print."""
    raw = _CID_V1_RAW + rendezvous_key()
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


@dataclass(frozen=True)
class KnownServer:
    """One server met before: its peer id (base58), addresses and when it was last seen."""

    peer: str
    addrs: tuple[str, ...]
    last_seen: float


@dataclass
class ServerCache:
    """Servers met before, newest first, at most :data:`MAX_SERVERS`."""

    servers: list[KnownServer] = field(default_factory=list)

    def seen(self, peer: str, addrs: Iterable[str], now: float) -> None:
        """Record that ``peer`` was seen at ``now`` at ``addrs`` (addresses merged, newest first)."""
        if not _valid_peer(peer):
            return
        fresh = [addr for addr in addrs if _valid_addr(addr)]
        old = next((server for server in self.servers if server.peer == peer), None)
        if old is not None:
            self.servers.remove(old)
            fresh += list(old.addrs)
        merged = tuple(dict.fromkeys(fresh))[:MAX_ADDRS]
        if not merged:
            return
        self.servers.insert(0, KnownServer(peer, merged, now))
        self.servers.sort(key=lambda server: -server.last_seen)
        del self.servers[MAX_SERVERS:]

    def forget_older_than(self, now: float, age: float = MAX_AGE_SECONDS) -> None:
        self.servers = [server for server in self.servers if now - server.last_seen <= age]

    def newest(self, count: int = MAX_SERVERS) -> list[KnownServer]:
        return self.servers[:count]

    def first_tries(self, keys: Sequence[bytes], count: int = CACHE_TRIES,
                    closest: int = CLOSEST_TRIES) -> list[KnownServer]:
        """The servers dialled at launch: for each of ``keys`` in turn (the first search's,
        ``discovery.topics.first_search_keys``), the cached server closest to it, until
        ``closest`` are chosen; then the newest, up to ``count``. Without keys, the newest."""
        known = [server for server in self.servers if peer_id_bytes(server.peer) is not None]
        chosen = first_tries(known, keys, lambda server, key: _distance(server.peer, key),
                             min(closest, count))
        return chosen + [server for server in self.servers if server not in chosen][:count - len(chosen)]

    def __len__(self) -> int:
        return len(self.servers)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CACHE_VERSION,
            "servers": [{"peer": server.peer, "addrs": list(server.addrs),
                         "last_seen": server.last_seen} for server in self.servers],
        }

    @classmethod
    def from_json(cls, document: object) -> ServerCache:
        """The cache in ``document``; what is not a valid entry is skipped."""
        cache = cls()
        if not isinstance(document, Mapping) or document.get("version") != CACHE_VERSION:
            return cache
        entries = document.get("servers")
        if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
            return cache
        for entry in list(entries)[: 4 * MAX_SERVERS]:
            if not isinstance(entry, Mapping):
                continue
            peer, addrs, last_seen = entry.get("peer"), entry.get("addrs"), entry.get("last_seen")
            if (not isinstance(peer, str) or not isinstance(addrs, list)
                    or not isinstance(last_seen, (int, float)) or isinstance(last_seen, bool)
                    or last_seen != last_seen or last_seen in (float("inf"), float("-inf"))):
                continue
            cache.seen(peer, [addr for addr in addrs[:MAX_ADDRS] if isinstance(addr, str)],
                       float(last_seen))
        return cache


def first_tries(servers: Sequence[T], keys: Sequence[bytes], distance: Callable[[T, bytes], int],
                count: int) -> list[T]:
    """Up to ``count`` of ``servers``: each key's closest (by ``distance``) in turn, then each
    one's second closest, and so on (``ServerCache.first_tries``; the simulation's returning
    searchers pick theirs with it too)."""
    rankings = [sorted(servers, key=functools.partial(_from, distance, key)) for key in keys]
    chosen: list[T] = []
    for depth in range(len(servers)):
        for ranking in rankings:
            if len(chosen) < count and ranking[depth] not in chosen:
                chosen.append(ranking[depth])
        if len(chosen) >= count:
            break
    return chosen


def _from(distance: Callable[[T, bytes], int], key: bytes, server: T) -> int:
    return distance(server, key)


def peer_id_bytes(peer: str) -> bytes | None:
    """A base58btc peer id (``12D3KooW...``, ``Qm...``) as bytes (``ID.to_bytes``), else None."""
    if not _valid_peer(peer):
        return None
    number = 0
    for char in peer:
        digit = _BASE58.find(char)
        if digit < 0:
            return None
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(peer) - len(peer.lstrip("1"))) + body


def _distance(peer: str, key: bytes) -> int:
    """Kademlia's distance from a server to ``key`` (``discovery.lookup.kad_distance``)."""
    raw = peer_id_bytes(peer) or b""
    return int.from_bytes(hashlib.sha256(raw).digest(), "big") ^ int.from_bytes(
        hashlib.sha256(key).digest(), "big")


def _valid_peer(peer: str) -> bool:
    return isinstance(peer, str) and 0 < len(peer) <= 128 and peer.isalnum() and peer.isascii()


def _valid_addr(addr: str) -> bool:
    return isinstance(addr, str) and 0 < len(addr) <= MAX_ADDR_CHARS and addr.startswith("/") \
        and addr.isascii() and "/p2p/" not in addr


@dataclass(frozen=True)
class Backoff:
    """When to look the rendezvous key up again while no server is known.

    ``first`` seconds after the launch lookup, doubling up to ``ceiling``:
    on the first day of the network a node costs the public DHT one lookup
    at launch, then at most one every ``ceiling`` seconds.
    """

    first: float = 60.0
    ceiling: float = 1800.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        return min(self.ceiling, self.first * float(2 ** min(attempt, 32)))
