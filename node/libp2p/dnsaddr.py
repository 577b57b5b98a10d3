"""Resolve ``/dnsaddr/<host>/p2p/<id>`` bootstrap addresses (py-libp2p's swarm cannot dial them).

The dnsaddr scheme (multiformats/multiaddr, ``protocols/DNSADDR.md``): the
addresses of ``/dnsaddr/<host>`` are the TXT records of ``_dnsaddr.<host>``,
each ``dnsaddr=<multiaddr>``. A record may itself be a ``/dnsaddr`` address
(resolved in turn). When the address ends in ``/p2p/<id>``, only records
that end in the same ``/p2p/<id>`` are kept: one name (``bootstrap.libp2p.io``)
lists several peers.

Bounded: at most :data:`MAX_DEPTH` levels of ``/dnsaddr`` inside ``/dnsaddr``,
:data:`MAX_QUERIES` TXT queries and :data:`MAX_ADDRS` addresses per address
resolved, :data:`QUERY_TIMEOUT` seconds per query. A name that does not
resolve, a server that does not answer, a record that is not a multiaddr: each
is skipped (logged), never raised.

dnspython's asynchronous resolver runs on trio. The default resolver reads
the system's configuration; ``$STRANGERS_DNS`` (``host:port``, e.g.
``127.0.0.1:5353``) names another DNS server instead (tests point it at a
server of their own; in process they may pass ``resolver=``).
"""

from __future__ import annotations

import logging
import os

import dns.asyncresolver
import dns.exception
import trio
from multiaddr import Multiaddr

logger = logging.getLogger(__name__)

MAX_DEPTH = 4
"""Levels of /dnsaddr inside /dnsaddr followed (go-multiaddr-dns follows 32 records deep; a
bootstrap list needs one or two)."""
MAX_QUERIES = 16
"""TXT queries per address resolved."""
MAX_ADDRS = 32
"""Addresses kept per address resolved."""
MAX_TXT_RECORDS = 64
"""TXT records read from one answer."""
QUERY_TIMEOUT = 3.0
"""Seconds one TXT query may take (retries included)."""
PREFIX = "dnsaddr="
ENV_DNS = "STRANGERS_DNS"


def system_resolver() -> dns.asyncresolver.Resolver:
    """The resolver of this machine's configuration (``/etc/resolv.conf``), or ``$STRANGERS_DNS``."""
    override = os.environ.get(ENV_DNS)
    if override:
        host, _, port = override.rpartition(":")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host.strip("[]")]
        resolver.port = int(port)
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = QUERY_TIMEOUT
    return resolver


def is_dnsaddr(addr: Multiaddr | str) -> bool:
    return str(addr).startswith("/dnsaddr/")


def _split(addr: Multiaddr) -> tuple[str, str | None]:
    """(host name, peer id or None) of a /dnsaddr address."""
    host = addr.value_for_protocol("dnsaddr")
    try:
        peer = addr.value_for_protocol("p2p")
    except Exception:  # multiaddr raises ProtocolLookupError when there is none
        peer = None
    return str(host), (str(peer) if peer else None)


def _peer_of(addr: Multiaddr) -> str | None:
    try:
        value = addr.value_for_protocol("p2p")
    except Exception:  # no /p2p part
        return None
    return str(value) if value else None


def parse_txt(strings: list[str], peer: str | None) -> list[Multiaddr]:
    """The multiaddrs of ``dnsaddr=`` TXT strings, only those of ``peer`` when given."""
    found: list[Multiaddr] = []
    for text in strings[:MAX_TXT_RECORDS]:
        if not text.startswith(PREFIX):
            continue
        try:
            addr = Multiaddr(text[len(PREFIX):])
        except Exception:  # not a multiaddr: skipped
            logger.debug("dnsaddr: ignoring %r", text)
            continue
        if peer is not None and _peer_of(addr) != peer:
            continue
        found.append(addr)
    return found


async def _txt(resolver, name: str, memo: dict[str, list[str]] | None = None) -> list[str]:
    """The TXT strings of ``name`` ([] when it does not resolve); ``memo`` shares answers."""
    if memo is not None and name in memo:
        return memo[name]
    strings = await _query_txt(resolver, name)
    if memo is not None:
        memo[name] = strings
    return strings


async def _query_txt(resolver, name: str) -> list[str]:
    try:
        with trio.move_on_after(QUERY_TIMEOUT + 0.5):  # a hang guard over dnspython's lifetime
            answer = await resolver.resolve(name, "TXT", lifetime=QUERY_TIMEOUT)
            strings = []
            for record in list(answer)[:MAX_TXT_RECORDS]:
                strings.append(b"".join(record.strings).decode("utf-8", "replace"))
            return strings
        logger.info("dnsaddr: %s timed out", name)
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        logger.info("dnsaddr: %s did not resolve: %s", name, exc)
    return []


async def resolve(addr: Multiaddr | str, *, resolver=None,
                  memo: dict[str, list[str]] | None = None) -> list[Multiaddr]:
    """The addresses behind ``addr`` (itself when it is not a ``/dnsaddr`` address).

    ``memo`` (name -> TXT strings) lets several addresses share one query per name.
    """
    addr = Multiaddr(str(addr))
    if not is_dnsaddr(addr):
        return [addr]
    if resolver is None:
        try:
            resolver = system_resolver()
        except (dns.exception.DNSException, OSError, ValueError) as exc:  # no usable configuration
            logger.info("dnsaddr: no DNS resolver (%s); %s not resolved", exc, addr)
            return []
    results: list[Multiaddr] = []
    queries = 0
    pending: list[tuple[Multiaddr, int]] = [(addr, 0)]
    seen: set[str] = set()
    while pending and len(results) < MAX_ADDRS:
        current, depth = pending.pop(0)
        if str(current) in seen:
            continue
        seen.add(str(current))
        if not is_dnsaddr(current):
            results.append(current)
            continue
        if depth >= MAX_DEPTH or queries >= MAX_QUERIES:
            logger.info("dnsaddr: %s not followed (depth %d, %d queries)", current, depth, queries)
            continue
        host, peer = _split(current)
        queries += 1
        for found in parse_txt(await _txt(resolver, f"_dnsaddr.{host}", memo), peer):
            pending.append((found, depth + 1))
    unique: dict[str, Multiaddr] = {}
    for found in results:
        unique.setdefault(str(found), found)
    return list(unique.values())[:MAX_ADDRS]


async def resolve_all(addrs, *, resolver=None) -> list[Multiaddr]:
    """:func:`resolve` each of ``addrs``; duplicates dropped, order kept.

    Addresses under different names resolve in parallel; those under one name
    (kubo's list has four ``/dnsaddr/bootstrap.libp2p.io/p2p/...``) share one
    query per name.
    """
    out: list[list[Multiaddr]] = [[] for _ in addrs]
    by_name: dict[str, list[int]] = {}
    for index, addr in enumerate(addrs):
        key = str(addr).split("/p2p/")[0] if is_dnsaddr(addr) else f"#{index}"
        by_name.setdefault(key, []).append(index)
    if resolver is None and any(is_dnsaddr(addr) for addr in addrs):
        try:
            resolver = system_resolver()
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            logger.info("dnsaddr: no DNS resolver (%s)", exc)
            resolver = None

    async def resolve_group(indexes: list[int]) -> None:
        memo: dict[str, list[str]] = {}
        for index in indexes:
            if resolver is None and is_dnsaddr(addrs[index]):
                continue
            out[index] = await resolve(addrs[index], resolver=resolver, memo=memo)

    async with trio.open_nursery() as nursery:
        for indexes in by_name.values():
            nursery.start_soon(resolve_group, indexes)
    merged: dict[str, Multiaddr] = {}
    for group in out:
        for addr in group:
            merged.setdefault(str(addr), addr)
    return list(merged.values())


__all__ = ["MAX_ADDRS", "MAX_DEPTH", "MAX_QUERIES", "is_dnsaddr", "parse_txt", "resolve",
           "resolve_all", "system_resolver"]
