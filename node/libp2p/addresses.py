"""Addresses other peers can dial: wildcard listen addresses expanded to interfaces."""

from __future__ import annotations

from libp2p.utils.address_validation import expand_wildcard_address
from multiaddr import Multiaddr


def _is_loopback(addr: Multiaddr) -> bool:
    text = str(addr)
    return text.startswith("/ip4/127.") or text.startswith("/ip6/::1/")


def dialable_addrs(host) -> list[Multiaddr]:
    """Our transport addresses with 0.0.0.0 / :: replaced by real ones, LAN before loopback."""
    out: list[Multiaddr] = []
    for addr in host.get_transport_addrs():
        text = str(addr)
        if text.startswith("/ip4/0.0.0.0/") or text.startswith("/ip6/::/"):
            family = "/ip4/" if text.startswith("/ip4/") else "/ip6/"
            expanded = [
                a for a in expand_wildcard_address(addr)
                if str(a).startswith(family) and str(a) != text
            ]
            out.extend(expanded)
            port = addr.value_for_protocol("tcp")
            out.append(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}" if family == "/ip4/" else f"/ip6/::1/tcp/{port}"))
        else:
            out.append(addr)
    # Relayed addresses (relay.py, H8-B): after the direct ones; alone with --hide-ip.
    from .relay import hides_ip, relayed_addrs

    out = [] if hides_ip(host) else out
    unique = list(dict.fromkeys(out))
    return sorted(unique, key=_is_loopback) + relayed_addrs(host)
