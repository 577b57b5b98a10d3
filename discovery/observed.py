"""Addresses other peers see us at, and the public addresses worth checking (pure).

A node behind a 1:1 NAT or a port forward is reachable at an address none
of its interfaces shows. Every identify answer tells us the address the
answering peer sees our connection come from (``observed_addr``). Over TCP
without port reuse (py-libp2p dials from an ephemeral port) the *port* of
that observation is the NAT's mapping of an outgoing connection, useless to
dial; the *IP* is what matters. So, as go-libp2p does for such transports:

* :class:`ObservedAddresses` counts, per observed IP, the distinct observers,
  grouped by network (an IPv4 /24, an IPv6 /48: many peers of one network
  count once), bounded in both directions;
* :func:`candidates` pairs the observed IPs with our listen ports: where a
  port forward or a 1:1 NAT sends that port to us, the pair is dialable;
* nothing is announced until proven: an AutoNAT dial-back (``node/nat.py``)
  reaches the candidate, and only addresses it reached are announced.

An observation is a claim of a peer: a lying peer can only make us ask an
AutoNAT server to dial an address of its choice at our listen port, which the
server refuses unless the address is the IP it sees us at.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable

from .addrscope import Scope, scope_of_ip

MAX_OBSERVED_IPS = 16
"""Observed IPs kept; the one observed least recently goes first."""
MAX_OBSERVERS = 32
"""Observer groups counted per observed IP."""
CONFIRMING_GROUPS = 2
"""Observer groups that make an observation trusted without a dial-back (go-libp2p's rule)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def observer_group(ip: str) -> str | None:
    """The network an observer counts for: its IPv4 /24 or IPv6 /48 (None: not an IP)."""
    parsed = _ip(ip)
    if parsed is None:
        return None
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _observable(ip: IPAddress) -> bool:
    """An IP worth listing: not loopback, link-local, unspecified or multicast."""
    return scope_of_ip(ip) is not Scope.LOOPBACK and not (
        ip.is_unspecified or ip.is_multicast or ip.is_link_local)


class ObservedAddresses:
    """Distinct observer groups per IP that peers saw us at (bounded)."""

    def __init__(self, max_ips: int = MAX_OBSERVED_IPS, max_observers: int = MAX_OBSERVERS) -> None:
        if max_ips < 1 or max_observers < 1:
            raise ValueError(f"bad bounds: max_ips={max_ips!r}, max_observers={max_observers!r}")
        self._max_ips = max_ips
        self._max_observers = max_observers
        self._seen: OrderedDict[str, set[str]] = OrderedDict()
        self.version = 0
        """Grows whenever an IP or an observer group is new (callers compare it)."""

    def record(self, observer: str, observed: str) -> bool:
        """``observer`` (its IP) saw us at ``observed`` (an IP); True if that was news.

        Nonsense (not an IP), loopback, link-local and multicast are ignored.
        """
        group = observer_group(observer)
        seen = _ip(observed)
        if group is None or seen is None or not _observable(seen):
            return False
        key = str(seen)
        groups = self._seen.pop(key, None)
        if groups is None:
            groups = set()
        self._seen[key] = groups  # most recent last
        while len(self._seen) > self._max_ips:
            self._seen.popitem(last=False)
        if group in groups or len(groups) >= self._max_observers:
            return False
        groups.add(group)
        self.version += 1
        return True

    def ips(self, min_groups: int = 1) -> list[str]:
        """IPs seen by at least ``min_groups`` observer groups, most groups first."""
        listed = [(len(groups), ip) for ip, groups in self._seen.items() if len(groups) >= min_groups]
        return [ip for _count, ip in sorted(listed, key=lambda item: -item[0])]

    def confirmed(self) -> list[str]:
        """IPs seen from :data:`CONFIRMING_GROUPS` networks or more."""
        return self.ips(CONFIRMING_GROUPS)


def candidates(observed: Iterable[str], listen: Iterable[tuple[str, int]]) -> list[str]:
    """Multiaddrs (text) pairing each observed IP with each listen port of its family.

    ``listen``: (our interface IP, TCP port) pairs. An observed IP that is one
    of our interface IPs gives nothing new: it is left out.
    """
    ours = {str(ip) for ip in (_ip(ip) for ip, _port in listen) if ip is not None}
    ports: dict[int, list[int]] = {4: [], 6: []}
    for ip_text, port in listen:
        ip = _ip(ip_text)
        if ip is None or not 0 < port < 65536 or scope_of_ip(ip) is Scope.LOOPBACK:
            continue
        if port not in ports[ip.version]:
            ports[ip.version].append(port)
    out: list[str] = []
    for text in observed:
        ip = _ip(text)
        if ip is None or str(ip) in ours or not _observable(ip):
            continue
        family = "ip4" if ip.version == 4 else "ip6"
        for port in ports[ip.version]:
            addr = f"/{family}/{ip}/tcp/{port}"
            if addr not in out:
                out.append(addr)
    return out
