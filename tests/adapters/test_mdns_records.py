"""libp2p mDNS TXT records: ours, and go-libp2p's, js-libp2p's and py-libp2p's as they build them."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.node.libp2p.mdns_records import (
    MAX_ADDRS_PER_PEER,
    encode_txt,
    parse_records,
    peer_name,
    split_txt,
    txt_strings,
)

GO_PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
JS_PEER = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"


def test_go_libp2p_one_record_with_a_string_per_address():
    """go-libp2p: zeroconf.RegisterProxy(..., txts) with txts = dnsaddr=<addr/p2p/id> each."""
    record = encode_txt([
        f"dnsaddr=/ip4/192.168.1.5/tcp/4001/p2p/{GO_PEER}".encode(),
        f"dnsaddr=/ip4/192.168.1.5/udp/4001/quic-v1/p2p/{GO_PEER}".encode(),
        f"dnsaddr=/ip6/fe80::1/tcp/4001/p2p/{GO_PEER}".encode(),
    ])
    assert parse_records([record]) == {GO_PEER: [
        "/ip4/192.168.1.5/tcp/4001", "/ip4/192.168.1.5/udp/4001/quic-v1", "/ip6/fe80::1/tcp/4001"]}


def test_js_libp2p_one_record_per_address():
    """js-libp2p (multicast-dns): an answer of type TXT per address, data 'dnsaddr=' + addr."""
    records = [encode_txt([f"dnsaddr=/ip4/10.0.0.{n}/tcp/4002/p2p/{JS_PEER}".encode()]) for n in (3, 4)]
    records.append(encode_txt([f"dnsaddr=/ip4/10.0.0.3/tcp/4002/p2p/{JS_PEER}".encode()]))  # repeated
    assert parse_records(records) == {JS_PEER: ["/ip4/10.0.0.3/tcp/4002", "/ip4/10.0.0.4/tcp/4002"]}


def test_py_libp2p_broadcaster_record_gives_only_its_first_address():
    """py-libp2p 0.8.1: dnsaddr=/ip4/0.0.0.0/..., dnsaddr2=... (the wildcard is dropped later)."""
    record = encode_txt([f"dnsaddr=/ip4/0.0.0.0/tcp/5000/p2p/{GO_PEER}".encode(),
                         f"dnsaddr2=/ip4/127.0.0.1/tcp/5000/p2p/{GO_PEER}".encode()])
    assert parse_records([record]) == {GO_PEER: ["/ip4/0.0.0.0/tcp/5000"]}


def test_garbage_is_ignored():
    records = [
        encode_txt([b"dnsaddr=/ip4/1.2.3.4/tcp/1", b"dnsaddr=not-a-multiaddr/p2p/" + GO_PEER.encode(),
                    b"dnsaddr=\xff\xfe/p2p/x", b"other=1", b"", b"dnsaddr=/p2p/" + GO_PEER.encode(),
                    f"dnsaddr=/ip4/1.2.3.4/tcp/1/p2p/{GO_PEER}/p2p-circuit".encode()]),
        b"\x40short",  # claims 64 bytes, has 5
    ]
    assert parse_records(records) == {}


def test_relayed_address_names_the_destination_not_the_relay():
    addr = f"/ip4/1.2.3.4/tcp/1/p2p/{JS_PEER}/p2p-circuit"
    assert parse_records([encode_txt([f"dnsaddr={addr}/p2p/{GO_PEER}".encode()])]) == {GO_PEER: [addr]}


def test_addresses_per_peer_are_bounded():
    strings = [f"dnsaddr=/ip4/10.0.0.1/tcp/{port}/p2p/{GO_PEER}".encode() for port in range(1, 100)]
    assert len(parse_records([encode_txt(strings)])[GO_PEER]) == MAX_ADDRS_PER_PEER


def test_our_strings_round_trip_and_skip_what_does_not_fit():
    addrs = ["/ip4/192.168.1.5/tcp/4001", f"/ip4/10.0.0.1/tcp/4001/p2p/{GO_PEER}", "/dns4/" + "x" * 250 + "/tcp/1"]
    strings = txt_strings(addrs, GO_PEER)
    assert strings == [f"dnsaddr=/ip4/192.168.1.5/tcp/4001/p2p/{GO_PEER}".encode(),
                       f"dnsaddr=/ip4/10.0.0.1/tcp/4001/p2p/{GO_PEER}".encode()]
    assert parse_records([encode_txt(strings)]) == {GO_PEER: ["/ip4/192.168.1.5/tcp/4001", "/ip4/10.0.0.1/tcp/4001"]}
    with pytest.raises(ValueError):
        encode_txt([b"x" * 256])


@given(st.lists(st.binary(max_size=255), max_size=20))
def test_split_inverts_encode(strings):
    assert split_txt(encode_txt(strings)) == strings


def test_peer_names_are_random_and_go_shaped():
    rng = random.Random(7)
    names = {peer_name(rng) for _ in range(50)}
    assert len(names) == 50
    assert all(32 <= len(name) <= 63 and name.isalnum() and name.islower() or name.isdigit() for name in names)
