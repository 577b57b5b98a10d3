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
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
"""Cached servers dialled at launch (the newest)."""

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
