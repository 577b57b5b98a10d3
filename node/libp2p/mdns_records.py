"""libp2p mDNS records (``_p2p._udp.local``): build ours, read everyone's.

The libp2p mDNS spec (specs/discovery/mdns.md): a peer answers a PTR query
for ``_p2p._udp.local`` with ``<peer-name>._p2p._udp.local``, where the peer
name is a random string (not the peer id), and puts each of its addresses,
with ``/p2p/<peer id>`` at the end, in a TXT string ``dnsaddr=<multiaddr>``.

Implementations differ in how they pack those strings, so the reader takes
the raw TXT data of every TXT record of the name:

* go-libp2p (zeroconf ``RegisterProxy``): one TXT record holding one string
  per address;
* js-libp2p (``multicast-dns``): one TXT record per address, one string each,
  only private and loopback addresses;
* py-libp2p 0.8.1's broadcaster: ``dnsaddr=``, ``dnsaddr2=``, ... (keys that
  go and js ignore) and ``0.0.0.0`` addresses: we read only ``dnsaddr=``, and
  the accept-side filter drops the wildcard.

python-zeroconf's ``ServiceInfo.properties`` is a dict and keeps only the
first of repeated ``dnsaddr=`` keys: do not read records through it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable

SERVICE = "_p2p._udp.local."
PREFIX = b"dnsaddr="
MAX_STRING = 255
"""A TXT character-string holds at most 255 bytes (RFC 6763 §6.1)."""
MAX_ADDRS_PER_PEER = 32
"""Addresses kept per peer from one announcement."""
_NAME_ALPHABET = string.ascii_lowercase + string.digits


def peer_name(rng: random.Random) -> str:
    """A random peer name of 32 to 63 characters, as go-libp2p makes them."""
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(rng.randint(32, 63)))


def txt_strings(addrs: Iterable[str], peer_id: str) -> list[bytes]:
    """``dnsaddr=<addr>/p2p/<peer_id>`` for each address (those that fit in a string)."""
    out: list[bytes] = []
    for addr in addrs:
        text = addr if addr.endswith(f"/p2p/{peer_id}") else f"{addr}/p2p/{peer_id}"
        data = PREFIX + text.encode()
        if len(data) <= MAX_STRING and data not in out:
            out.append(data)
    return out


def encode_txt(strings: Iterable[bytes]) -> bytes:
    """TXT record data: each string prefixed by its length."""
    out = bytearray()
    for item in strings:
        if len(item) > MAX_STRING:
            raise ValueError(f"TXT string of {len(item)} bytes (at most {MAX_STRING})")
        out.append(len(item))
        out += item
    return bytes(out)


def split_txt(data: bytes) -> list[bytes]:
    """The strings of TXT record data (a truncated last string is dropped)."""
    strings: list[bytes] = []
    index = 0
    while index < len(data):
        length = data[index]
        item = data[index + 1 : index + 1 + length]
        if len(item) < length:
            break
        strings.append(item)
        index += 1 + length
    return strings


def _peer_of(addr: str) -> str | None:
    """The peer id at the end of ``.../p2p/<id>`` (not a relay's in a circuit address)."""
    head, sep, peer = addr.rpartition("/p2p/")
    if not sep or not peer or "/" in peer or "/p2p-circuit" in peer:
        return None
    return peer if head else None


def parse_records(records: Iterable[bytes]) -> dict[str, list[str]]:
    """Addresses (without ``/p2p``) by peer id, from the raw data of TXT records.

    Reads every ``dnsaddr=`` string of every record; ignores other strings,
    addresses without a peer id and strings that are not text.
    """
    peers: dict[str, list[str]] = {}
    for record in records:
        for item in split_txt(record):
            if not item.startswith(PREFIX):
                continue
            try:
                addr = item[len(PREFIX):].decode("ascii").strip()
            except UnicodeDecodeError:
                continue
            peer = _peer_of(addr)
            if peer is None or not addr.startswith("/"):
                continue
            bare = addr[: -len(f"/p2p/{peer}")]
            found = peers.setdefault(peer, [])
            if bare not in found and len(found) < MAX_ADDRS_PER_PEER:
                found.append(bare)
    return peers
