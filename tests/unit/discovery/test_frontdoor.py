"""The front door's pure part: the rendezvous key, the server cache, the back-off."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strangers.discovery import frontdoor
from strangers.discovery.frontdoor import Backoff, ServerCache, rendezvous_cid, rendezvous_key

PEER = "12D3KooWKg3jKUT2meqRtEsSvDHQPbc74VFYsexKd4s91H5vrXtr"


def test_the_rendezvous_key_is_the_sha256_multihash_of_the_fixed_name():
    digest = hashlib.sha256(b"strangers/v1/servers").digest()
    assert rendezvous_key() == b"\x12\x20" + digest
    assert rendezvous_cid().startswith("bafkrei")  # CIDv1, raw, sha2-256: as kubo prints it
    assert rendezvous_cid() == "bafkreib5csjhb7lvjdbuc4u54aaa5xdy52xfxk7ryoj5elg2mfvgvhsw7e"


def test_the_cache_keeps_the_newest_servers_first_and_merges_addresses():
    cache = ServerCache()
    cache.seen("PeerA", ["/ip4/10.0.0.1/tcp/1"], now=100.0)
    cache.seen("PeerB", ["/ip4/10.0.0.2/tcp/1"], now=200.0)
    cache.seen("PeerA", ["/ip4/10.0.0.9/tcp/1"], now=300.0)
    assert [server.peer for server in cache.newest()] == ["PeerA", "PeerB"]
    assert cache.newest()[0].addrs == ("/ip4/10.0.0.9/tcp/1", "/ip4/10.0.0.1/tcp/1")
    assert cache.newest()[0].last_seen == 300.0


def test_the_cache_is_bounded_in_servers_addresses_and_age():
    cache = ServerCache()
    for index in range(frontdoor.MAX_SERVERS + 10):
        cache.seen(f"Peer{index}", [f"/ip4/10.0.0.{i}/tcp/{index + 1}" for i in range(20)],
                   now=float(index))
    assert len(cache) == frontdoor.MAX_SERVERS
    assert cache.newest(1)[0].peer == f"Peer{frontdoor.MAX_SERVERS + 9}"  # the oldest went
    assert all(len(server.addrs) == frontdoor.MAX_ADDRS for server in cache.newest())
    cache.forget_older_than(now=frontdoor.MAX_AGE_SECONDS + 40.0)
    assert [server.last_seen for server in cache.newest()] == [float(n) for n in range(73, 39, -1)]


def test_bad_entries_are_not_cached():
    cache = ServerCache()
    cache.seen("not a peer id!", ["/ip4/10.0.0.1/tcp/1"], now=1.0)
    cache.seen(PEER, ["not an address", "/ip4/10.0.0.1/tcp/1/p2p/" + PEER, "/" + "x" * 300], now=1.0)
    assert len(cache) == 0


def test_the_cache_round_trips_through_json():
    cache = ServerCache()
    cache.seen(PEER, ["/ip4/10.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"], now=1700000000.5)
    cache.seen("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", ["/ip4/1.2.3.4/tcp/1"], now=5.0)
    document = json.loads(json.dumps(cache.to_json()))
    assert ServerCache.from_json(document) == cache


@pytest.mark.parametrize("document", [
    None, [], "servers", {"version": 2, "servers": []}, {"version": 1, "servers": "x"},
    {"version": 1, "servers": [1, None, {"peer": 3}, {"peer": PEER, "addrs": "x", "last_seen": 1}]},
    {"version": 1, "servers": [{"peer": PEER, "addrs": ["/ip4/1.2.3.4/tcp/1"], "last_seen": True}]},
    {"version": 1, "servers": [{"peer": PEER, "addrs": ["/ip4/1.2.3.4/tcp/1"],
                                "last_seen": float("nan")}]},
])
def test_a_damaged_cache_reads_as_empty(document):
    assert len(ServerCache.from_json(document)) == 0


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=20) | st.integers(),
                    lambda inner: st.lists(inner, max_size=5)
                    | st.dictionaries(st.sampled_from(["version", "servers", "peer", "addrs",
                                                       "last_seen"]), inner, max_size=5),
                    max_leaves=30))
def test_any_json_document_reads_without_raising(document):
    cache = ServerCache.from_json(document)
    assert len(cache) <= frontdoor.MAX_SERVERS


def test_the_back_off_doubles_to_its_ceiling():
    backoff = Backoff(first=60.0, ceiling=1800.0)
    assert [backoff.delay(n) for n in range(7)] == [60, 120, 240, 480, 960, 1800, 1800]
    assert backoff.delay(10_000) == 1800
    with pytest.raises(ValueError):
        backoff.delay(-1)


def _peer(index: int) -> str:
    """A valid base58 peer id (an identity multihash of 36 bytes, as an Ed25519 key's)."""
    raw = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + hashlib.sha256(b"%d" % index).digest()
    number, text = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        text = frontdoor._BASE58[digit] + text
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + text


def test_a_peer_id_reads_back_to_its_bytes():
    for index in range(20):
        peer = _peer(index)
        assert frontdoor.peer_id_bytes(peer) == bytes([0, 0x24, 8, 1, 0x12, 0x20]) + hashlib.sha256(
            b"%d" % index).digest()
    assert frontdoor.peer_id_bytes("QmInvalid0") is None  # 0 is not base58
    assert frontdoor.peer_id_bytes("") is None


def _distance(peer: str, key: bytes) -> int:
    raw = frontdoor.peer_id_bytes(peer)
    assert raw is not None
    return int.from_bytes(hashlib.sha256(raw).digest(), "big") ^ int.from_bytes(
        hashlib.sha256(key).digest(), "big")


def test_the_first_tries_are_the_closest_to_each_key_then_the_newest():
    cache = ServerCache()
    for index in range(frontdoor.MAX_SERVERS):
        cache.seen(_peer(index), [f"/ip4/10.0.{index}.1/tcp/4001"], float(index))
    keys = [hashlib.sha256(b"cinema").digest(), hashlib.sha256(b"jazz").digest()]
    tries = cache.first_tries(keys)
    assert len(tries) == frontdoor.CACHE_TRIES
    closest = tries[:frontdoor.CLOSEST_TRIES]
    for rank, key in ((0, keys[0]), (1, keys[1])):  # each key's closest first, in turn
        assert closest[rank] == min(cache.servers, key=lambda server: _distance(server.peer, key))
    for key, server in zip(keys * 2, closest):  # then each one's second closest
        better = [other for other in cache.servers if _distance(other.peer, key) < _distance(server.peer, key)]
        assert len(better) <= 1
    rest = [server for server in cache.servers if server not in closest]
    assert tries[frontdoor.CLOSEST_TRIES:] == rest[:frontdoor.CACHE_TRIES - frontdoor.CLOSEST_TRIES]
    assert len(set(tries)) == len(tries)
    assert cache.first_tries([]) == cache.newest(frontdoor.CACHE_TRIES)  # no search: the newest


def test_first_tries_of_a_small_cache_are_all_of_it_once():
    cache = ServerCache()
    for index in range(3):
        cache.seen(_peer(index), ["/ip4/10.0.0.1/tcp/4001"], float(index))
    tries = cache.first_tries([b"a", b"b", b"c", b"d", b"e"])
    assert sorted(server.peer for server in tries) == sorted(server.peer for server in cache.servers)
