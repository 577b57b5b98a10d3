"""Canary for ``strangers.node.libp2p.lazydns``: the swarm's DNS resolver is made when first used.

py-libp2p 0.8.1's swarm makes a ``multiaddr`` ``DNSResolver`` when it is
built, and that makes dnspython's resolver at once (``/etc/resolv.conf``
read, its modules run). With ours a host starts without it, and the first
read of the attribute makes the same resolver the library would have made.
"""

from __future__ import annotations

import dns.asyncresolver
import pytest
from libp2p.network.swarm import Swarm
from multiaddr.resolvers.dns import DNSResolver

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import lazydns
from strangers.node.libp2p.host import build_host

from canary import changed

PATCH = "lazydns: DNSResolver._resolver made on first use"


@pytest.fixture
def library_resolver():
    lazydns.uninstall()
    try:
        yield
    finally:
        lazydns.install()


def test_the_library_makes_its_resolver_when_the_swarm_is_built(library_resolver) -> None:
    assert not lazydns.installed()
    resolver = DNSResolver()
    assert isinstance(vars(resolver).get("_resolver"), dns.asyncresolver.Resolver), changed(
        PATCH, "DNSResolver() no longer makes dnspython's resolver in __init__ (the patch may go)")
    swarm = build_host(fresh_identity()).get_network()
    assert isinstance(swarm, Swarm)
    assert isinstance(swarm.dns_resolver, DNSResolver), changed(
        PATCH, "the swarm no longer makes a DNSResolver when it is built")


def test_a_host_starts_without_a_resolver_and_makes_it_on_first_use() -> None:
    swarm = build_host(fresh_identity()).get_network()  # build_host installs the patch
    assert lazydns.installed()
    assert isinstance(swarm, Swarm)
    resolver = swarm.dns_resolver
    assert "_resolver" not in vars(resolver)
    made = resolver._resolver
    assert isinstance(made, dns.asyncresolver.Resolver)
    assert resolver._resolver is made  # once per instance
    assert DNSResolver()._resolver is not made
