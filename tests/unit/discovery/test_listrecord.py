"""Shared blocklist records (discovery/listrecord.py): signed, versioned, bounded."""

from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.discovery.listrecord import (
    LABEL,
    MAX_ENTRIES,
    ListEntry,
    decode_record,
    dht_key,
    key_from_text,
    newest,
    sign_record,
)
from strangers.errors import DiscoveryError

CURATOR = Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35)))
KEY = CURATOR.public_key().public_bytes_raw()


def peer(number: int) -> str:
    return peer_id_to_text(ed25519_peer_id(number.to_bytes(32, "big")))


ENTRIES = [ListEntry(peer(1), "spam"), ListEntry(peer(2), ""), ListEntry(peer(3), "asked kids' ages")]


def test_a_record_round_trips_and_names_its_list() -> None:
    record = decode_record(sign_record(CURATOR, 7, "school", ENTRIES), KEY)
    assert (record.curator, record.version, record.name) == (KEY, 7, "school")
    assert record.entries == tuple(ENTRIES)
    assert record.peer_ids() == {peer(1), peer(2), peer(3)}
    assert dht_key(KEY) == "/slist/" + KEY.hex()
    assert key_from_text(KEY.hex().upper()) == key_from_text("slist:" + KEY.hex()) == KEY


@given(st.integers(1, 2**53), st.lists(st.integers(1, 2**200), unique=True, max_size=30),
       st.text(min_size=1, max_size=64).filter(str.isprintable))
def test_any_list_round_trips(version: int, numbers: list[int], name: str) -> None:
    entries = [ListEntry(peer(number), f"r{number % 7}") for number in numbers]
    record = decode_record(sign_record(CURATOR, version, name, entries), KEY)
    assert (record.version, record.name, record.entries) == (version, name, tuple(entries))


def test_a_forged_or_foreign_record_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(DiscoveryError, match="another list"):
        decode_record(sign_record(other, 9, "school", []), KEY)
    # the curator's key in the body, signed by someone else
    body = msgpack.packb({"v": 1, "k": KEY, "n": 9, "name": "school", "e": []})
    forged = msgpack.packb({"b": body, "s": other.sign(LABEL + body)})
    with pytest.raises(DiscoveryError, match="forged"):
        decode_record(forged, KEY)
    # one bit of a genuine record flipped
    genuine = bytearray(sign_record(CURATOR, 9, "school", ENTRIES))
    genuine[40] ^= 1
    with pytest.raises(DiscoveryError):
        decode_record(bytes(genuine), KEY)


def test_newest_valid_version_wins_and_stale_or_bad_ones_lose() -> None:
    v1 = sign_record(CURATOR, 1, "school", ENTRIES)
    v2 = sign_record(CURATOR, 2, "school", ENTRIES[:1])
    forged_v9 = sign_record(Ed25519PrivateKey.generate(), 9, "school", [])
    index, record = newest([v1, b"junk", forged_v9, v2], KEY)
    assert index == 3 and record.version == 2
    assert newest([v2, v2], KEY)[0] == 0  # a tie keeps the first (the stored one)
    assert newest([b"junk", forged_v9], KEY) is None


@pytest.mark.parametrize("bad", [
    b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"b": b"x"}),
    msgpack.packb({"b": b"\x81\xa1v\x01", "s": bytes(64)}),
    msgpack.packb({"b": b"\x80", "s": bytes(64)}),
    msgpack.packb({"b": b"\x80\x80", "s": bytes(64)}),
    b"\x00" * (2 * 1024 * 1024), None, "text",
])
def test_malformed_records_raise_only_discovery_errors(bad) -> None:
    with pytest.raises(DiscoveryError):
        decode_record(bad, KEY)


def _signed(body: dict) -> bytes:
    raw = msgpack.packb(body, use_bin_type=True)
    return msgpack.packb({"b": raw, "s": CURATOR.sign(LABEL + raw)}, use_bin_type=True)


@pytest.mark.parametrize("change, error", [
    ({"v": 2}, "format"),
    ({"n": 0}, "version"),
    ({"n": True}, "version"),
    ({"name": ""}, "name"),
    ({"name": "a\nb"}, "name"),
    ({"e": [[b"\x12\x20" + bytes(32), "x"]] * 2}, "twice"),
    ({"e": [[b"nope", "x"]]}, "not a peer id"),
    ({"e": [["string", "x"]]}, "entry"),
    ({"e": [[b"\x12\x20" + bytes(32), "x" * 201]]}, "entry"),
    ({"k": bytes(31)}, "32 bytes"),
])
def test_signed_but_out_of_bounds_bodies_are_refused(change: dict, error: str) -> None:
    body = {"v": 1, "k": KEY, "n": 1, "name": "school", "e": []} | change
    with pytest.raises(DiscoveryError, match=error):
        decode_record(_signed(body), None if "k" in change else KEY)


def test_signing_enforces_the_bounds() -> None:
    with pytest.raises(DiscoveryError):
        sign_record(CURATOR, 0, "school", [])
    with pytest.raises(DiscoveryError):
        sign_record(CURATOR, 1, "", [])
    with pytest.raises(DiscoveryError):
        sign_record(CURATOR, 1, "school", [ListEntry("bogus")])
    with pytest.raises(DiscoveryError):
        sign_record(CURATOR, 1, "school", [ListEntry(peer(1), "x" * 201)])
    with pytest.raises(DiscoveryError):
        sign_record(CURATOR, 1, "school", [ListEntry(peer(n)) for n in range(MAX_ENTRIES + 1)])
    full = sign_record(CURATOR, 1, "school", [ListEntry(peer(n), "r" * 200)
                                               for n in range(1, MAX_ENTRIES + 1)])
    assert len(decode_record(full, KEY).entries) == MAX_ENTRIES
    for text in ["", "zz" * 32, KEY.hex()[:-1], 5]:
        with pytest.raises(DiscoveryError):
            key_from_text(text)
