"""Address scopes: what a peer may be told, and what we may dial."""

from __future__ import annotations

import pytest

from strangers.discovery.addrscope import (
    Scope,
    addresses_for,
    dialable,
    for_local_link,
    is_dialable,
    is_unspecified,
    recipient_scope,
    scope_of,
    scope_of_ip,
    visible_to,
)

LOOP = "/ip4/127.0.0.1/tcp/4001"
LAN = "/ip4/192.168.1.7/tcp/4001"
TEN = "/ip4/10.1.2.3/tcp/4001"
CGNAT = "/ip4/100.64.3.4/tcp/4001"
LINK = "/ip4/169.254.9.9/tcp/4001"
ULA = "/ip6/fd12::7/tcp/4001"
LOOP6 = "/ip6/::1/tcp/4001"
PUBLIC = "/ip4/203.0.113.77/tcp/4001"
PUBLIC6 = "/ip6/2606:4700::1/tcp/4001"
RELAYED = "/ip4/198.51.100.1/tcp/4001/p2p/QmRelay/p2p-circuit"
DNS = "/dns4/example.org/tcp/4001"
MINE = [LOOP, LAN, CGNAT, PUBLIC, LOOP6, ULA, PUBLIC6, RELAYED, DNS, "/ip4/0.0.0.0/tcp/4001"]


@pytest.mark.parametrize("addr, scope", [
    (LOOP, Scope.LOOPBACK), (LOOP6, Scope.LOOPBACK), ("/ip6/::ffff:127.0.0.1/tcp/1", Scope.LOOPBACK),
    (LAN, Scope.PRIVATE), (TEN, Scope.PRIVATE), (CGNAT, Scope.PRIVATE), (LINK, Scope.PRIVATE),
    (ULA, Scope.PRIVATE), ("/ip6/fe80::1%eth0/tcp/1", Scope.PRIVATE),
    (PUBLIC, Scope.PUBLIC), (PUBLIC6, Scope.PUBLIC), (RELAYED, Scope.PUBLIC), (DNS, Scope.PUBLIC),
    ("/ip4/100.128.0.1/tcp/1", Scope.PUBLIC),  # just outside CGNAT
    ("/ip4/10.0.0.300/tcp/1", None), ("/ip6/1.2.3.4/tcp/1", None), ("/ip4/::1/tcp/1", None),
    ("/ip4/1.2.3.4", Scope.PUBLIC),
    ("/ip4/", None), ("/tcp/1", None), ("", None), ("ip4/1.2.3.4/tcp/1", None),
])
def test_scope_of(addr, scope):
    assert scope_of(addr) == scope


@pytest.mark.parametrize("addr", [LOOP, LAN, CGNAT, LINK, ULA, LOOP6, PUBLIC, PUBLIC6, RELAYED, DNS,
                                  "/ip4/8.8.8.8/udp/4001/quic-v1"])
def test_dialable(addr):
    assert is_dialable(addr)


@pytest.mark.parametrize("addr", [
    "/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001", "/ip6/::ffff:0.0.0.0/tcp/1",
    "/ip4/224.0.0.251/udp/5353", "/ip6/ff02::fb/udp/5353", "/ip4/255.255.255.255/tcp/1",
    "/ip4/240.0.0.1/tcp/1", "/ip4/0.1.2.3/tcp/1",
    "/ip4/192.168.1.7/tcp/0", "/ip4/192.168.1.7/tcp/65536", "/ip4/192.168.1.7/tcp/x", "/ip4/192.168.1.7/tcp",
    "/ip4/nonsense/tcp/1", "/dns4", "/dns4//tcp/1", "/unix/tmp/sock", "", "garbage",
])
def test_not_dialable(addr):
    assert not is_dialable(addr)


def test_unspecified():
    assert is_unspecified("/ip4/0.0.0.0/tcp/0") and is_unspecified("/ip6/::/tcp/1")
    assert not is_unspecified(LAN) and not is_unspecified(DNS) and not is_unspecified("")


def test_scope_of_ip_takes_text():
    assert scope_of_ip("10.0.0.1") is Scope.PRIVATE
    assert scope_of_ip("fe80::1%lo") is Scope.PRIVATE


def test_visibility_table():
    assert visible_to(Scope.PUBLIC, None) and not visible_to(Scope.PRIVATE, None)
    assert visible_to(Scope.PUBLIC, Scope.PUBLIC) and not visible_to(Scope.PRIVATE, Scope.PUBLIC)
    assert visible_to(Scope.PRIVATE, Scope.PRIVATE) and not visible_to(Scope.LOOPBACK, Scope.PRIVATE)
    assert all(visible_to(scope, Scope.LOOPBACK) for scope in Scope)


def test_a_stranger_on_the_internet_learns_only_public_addresses():
    assert addresses_for(MINE, "/ip4/198.51.100.9/tcp/5555") == [PUBLIC, PUBLIC6, RELAYED, DNS]


def test_a_peer_on_the_lan_learns_private_then_public_never_loopback():
    told = addresses_for(MINE, "192.168.1.9")
    assert told == [LAN, CGNAT, ULA, PUBLIC, PUBLIC6, RELAYED, DNS]


def test_a_peer_on_loopback_learns_everything_dialable_loopback_first():
    told = addresses_for(MINE, "/ip4/127.0.0.1/tcp/5555")
    assert told[:2] == [LOOP, LOOP6]
    assert set(told) == set(MINE) - {"/ip4/0.0.0.0/tcp/4001"}


def test_unknown_recipient_gets_public_only_and_duplicates_go():
    assert addresses_for([PUBLIC, LAN, PUBLIC], None) == [PUBLIC]
    assert addresses_for([LAN], "not an address") == []


def test_recipient_scope():
    assert recipient_scope(None) is None
    assert recipient_scope("10.0.0.1") is Scope.PRIVATE
    assert recipient_scope("/ip4/10.0.0.1/tcp/1/p2p/QmRelay/p2p-circuit") is Scope.PUBLIC
    assert recipient_scope("/ip6/::1/tcp/1") is Scope.LOOPBACK
    assert recipient_scope("what") is None


def test_dialable_filters_what_others_tell_us():
    assert dialable(["/ip4/0.0.0.0/tcp/4001", LAN, "/ip4/1.2.3.4/tcp/0", PUBLIC]) == [LAN, PUBLIC]


def test_local_link_records_leave_loopback_out_unless_it_is_all_there_is():
    assert for_local_link([LOOP, LAN, LAN, "/ip4/0.0.0.0/tcp/1", PUBLIC, RELAYED]) == [LAN, PUBLIC]
    assert for_local_link([LOOP, "/ip4/0.0.0.0/tcp/1", LOOP6]) == [LOOP, LOOP6]
    assert for_local_link(["garbage"]) == []
