"""Which of our addresses a given peer may be told, and which addresses we can dial.

Pure: multiaddrs are handled as their text form (``/ip4/10.0.0.2/tcp/4001``),
parsed with :mod:`ipaddress`; no libp2p, no sockets.

Scopes (:class:`Scope`), from narrowest to widest:

* ``LOOPBACK``: 127/8, ::1, reachable only from this machine;
* ``PRIVATE``: RFC 1918, CGNAT 100.64/10, link-local 169.254/16 and fe80::/10,
  unique-local fc00::/7: reachable only inside some private network;
* ``PUBLIC``: everything else that is dialable, plus DNS names (we cannot
  tell) and relayed addresses (``/p2p-circuit``, judged by the relay's own
  address in front of it).

A peer is told an address when it could possibly reach it (:func:`visible_to`):
public addresses to everyone, private ones only to peers that reached us from
a private or loopback address, loopback ones only to peers on loopback. The
recipient is judged by the address we see it at (the remote end of its
connection), so a stranger across the internet never learns our LAN or
loopback addresses.

Unroutable addresses (:func:`is_dialable` is false) are never announced and
never dialled: unspecified ``0.0.0.0``/``::`` (on a real network a refused
dial; on one machine a dial of ourselves), multicast, broadcast, port 0.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
    "169.254.0.0/16", "fe80::/10",  # link-local
    "fc00::/7",  # unique local (RFC 4193)
))
_PORT_PROTOCOLS = ("tcp", "udp")
_NAME_PROTOCOLS = ("dns", "dns4", "dns6", "dnsaddr")


class Scope(enum.IntEnum):
    """How far away an address can be reached from (wider is larger)."""

    LOOPBACK = 0
    """This machine only."""
    PRIVATE = 1
    """Inside a private network (RFC 1918, CGNAT, link-local, ULA)."""
    PUBLIC = 2
    """Anywhere (or unknown: DNS names)."""


def _components(addr: str) -> list[str]:
    parts = addr.split("/")[1:] if addr.startswith("/") else []
    return [] if "" in parts else parts


def _first_ip(parts: Sequence[str]) -> IPAddress | None:
    for index, name in enumerate(parts[:-1]):
        if name in ("ip4", "ip6"):
            try:
                ip = ipaddress.ip_address(parts[index + 1].split("%")[0])
            except ValueError:
                return None
            if name == "ip4" and ip.version != 4 or name == "ip6" and ip.version != 6:
                return None
            return ip
    return None


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def scope_of_ip(ip: IPAddress | str) -> Scope:
    """The scope of one IP address (``::ffff:a.b.c.d`` counts as ``a.b.c.d``)."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%")[0])
    ip = _unmapped(ip)
    if ip.is_loopback:
        return Scope.LOOPBACK
    if any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
        return Scope.PRIVATE
    return Scope.PUBLIC


def scope_of(addr: str) -> Scope | None:
    """The scope of a multiaddr's text; None if it names no address we understand."""
    parts = _components(addr)
    if not parts:
        return None
    if parts[0] in _NAME_PROTOCOLS:
        return Scope.PUBLIC
    ip = _first_ip(parts)
    if ip is None:
        return None
    return scope_of_ip(ip)


def is_dialable(addr: str) -> bool:
    """False for what nobody can dial: unspecified, multicast, broadcast, port 0, garbage."""
    parts = _components(addr)
    if not parts:
        return False
    for index, name in enumerate(parts):
        if name in _PORT_PROTOCOLS:
            if index + 1 >= len(parts) or not parts[index + 1].isdigit():
                return False
            if not 0 < int(parts[index + 1]) < 65536:
                return False
    if parts[0] in _NAME_PROTOCOLS:
        return len(parts) > 1 and bool(parts[1])
    if parts[0] not in ("ip4", "ip6"):
        return False
    ip = _first_ip(parts)
    if ip is None:
        return False
    ip = _unmapped(ip)
    if ip.is_unspecified or ip.is_multicast:
        return False
    # 0/8 ("this network"), 240/4 (reserved) and the broadcast address
    return not (isinstance(ip, ipaddress.IPv4Address) and (ip.is_reserved or int(ip) >> 24 == 0))


def is_unspecified(addr: str) -> bool:
    """True for a wildcard listen address (``/ip4/0.0.0.0/...``, ``/ip6/::/...``)."""
    ip = _first_ip(_components(addr))
    return ip is not None and ip.is_unspecified


def visible_to(addr_scope: Scope, recipient: Scope | None) -> bool:
    """May a peer at ``recipient`` scope be told an address of ``addr_scope``?

    ``None`` (we do not know where the peer is) counts as public.
    """
    return addr_scope >= (Scope.PUBLIC if recipient is None else recipient)


def addresses_for(addrs: Iterable[str], recipient: str | None) -> list[str]:
    """The addresses of ours (multiaddr texts) a peer we see at ``recipient`` may learn.

    ``recipient`` is the remote address of the peer's connection (a multiaddr
    text or a bare IP), or None when unknown (then only public ones). Drops
    undialable addresses and duplicates; the recipient's own scope comes
    first (what it most likely reaches), then wider ones.
    """
    where = recipient_scope(recipient)
    kept: dict[str, Scope] = {}
    for addr in addrs:
        scope = scope_of(addr)
        if scope is None or not is_dialable(addr) or not visible_to(scope, where):
            continue
        kept.setdefault(addr, scope)
    return sorted(kept, key=lambda a: kept[a] - (Scope.LOOPBACK if where is None else where))


def recipient_scope(recipient: str | None) -> Scope | None:
    """The scope of the address we see a peer at (multiaddr text or bare IP)."""
    if recipient is None:
        return None
    if recipient.startswith("/"):
        if "/p2p-circuit" in recipient:
            return Scope.PUBLIC  # a relayed peer: wherever it is, it reached us from afar
        return scope_of(recipient)
    try:
        return scope_of_ip(recipient)
    except ValueError:
        return None


def dialable(addrs: Iterable[str]) -> list[str]:
    """``addrs`` without the unroutable ones (for addresses learned from others)."""
    return [addr for addr in addrs if is_dialable(addr)]


def for_local_link(addrs: Iterable[str]) -> list[str]:
    """What an mDNS record carries: every dialable non-loopback direct address.

    No relayed addresses (a neighbour can dial us directly; go-libp2p leaves
    them out too). Loopback addresses only when there is nothing else (a machine whose only
    interface is ``lo``: then the only listeners are on this machine anyway).
    """
    usable = [addr for addr in dict.fromkeys(addrs)
              if is_dialable(addr) and scope_of(addr) is not None and "/p2p-circuit" not in addr]
    wider = [addr for addr in usable if scope_of(addr) != Scope.LOOPBACK]
    return wider or usable
