"""The hostile peer's v2 handshake against the known-answer vector of docs/protocol.md §6.2.

The vector is copied from the document (not computed by the project's code); if the hostile peer
and the document disagree, one of them is wrong and the e2e attacks (e, f) cannot be trusted.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostile.crypto import HostileCryptoError, InitiatorV2, Ratchet, ResponderV2
from hostile.peer import topic_key

KAT = {
    "idR": "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7",
    "idI": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    "m": "404142434445464748494a4b4c4d4e4f",
    "eI": "493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d",
    "eR": "dc2cca31e8e43bbd91dff7e475cca3347eb478107d5bd765aba4ae4a30c35d44",
    "c": "97797c7c3429717ee8cd9d124f223b543b8dd81011bd7da0697b23dfe326bf39",
    "sig_I": "443b270a4d8b7a151aae7f864dd0ff309a2d7a7d1b0bc3137aaebd92af80c079"
             "d44628c60a2d7cc4efe7bbf716daaf102b64b69eb12572e7cab0bb6b92919d06",
    "sig_R": "df0d722e54f588fa4c081bfe6aa7e848b0de8087fdc19f39b49c03ce493837c1"
             "55f02d80a231cf52dfbe1ce0d4b6e375dc47417022dbacdfe1970a3a4b9a430d",
    "transcript": "edb7aeddd5b07dcf3c4d73185f75f7dfe89c016085b231814cca03e5beb5f47a",
    "root": "c18b7b67076d33902a873416ce9eb74ab331ba15addab7b9188cabc14f918589",
    "finished_I": "e29fd45a6960d9aeecf245d283c3818ab9c1c9bb117912fb7c93e5ea732f7f1d",
    "finished_R": "1d3a3fc6d9794e49186c2b48bbf4c962b08427c1b526aba63aca8546c73f3e0c",
}
V = {name: bytes.fromhex(value) for name, value in KAT.items()}


def initiator() -> InitiatorV2:
    identity = Ed25519PrivateKey.from_private_bytes(bytes(range(0x00, 0x20)))
    ephemeral = iter([bytes(range(0x80, 0xA0))])
    return InitiatorV2(identity, V["idR"], V["m"], lambda size: next(ephemeral))


def hello_r(signature: bytes) -> dict:
    return {"t": "hello", "v": 2, "m": V["m"], "e": V["eR"], "s": signature}


def test_the_hostile_initiator_reproduces_the_documented_vector():
    hs = initiator()
    assert hs.own_identity == V["idI"]
    assert hs.commit() == {"t": "commit", "v": 2, "m": V["m"], "c": V["c"]}
    keys = hs.receive_hello(hello_r(V["sig_R"]))
    assert (keys.transcript, keys.root, keys.safety) == (V["transcript"], V["root"],
                                                         "60099 39027 03837")
    assert hs.hello() == {"t": "hello", "v": 2, "m": V["m"], "e": V["eI"], "s": V["sig_I"]}
    assert hs.finished() == {"t": "finished", "f": V["finished_I"]}
    hs.receive_finished({"t": "finished", "f": V["finished_R"]})


def test_the_hostile_initiator_rejects_a_bad_signature_and_a_bad_finished():
    with pytest.raises(HostileCryptoError):
        initiator().receive_hello(hello_r(bytes(64)))
    hs = initiator()
    hs.receive_hello(hello_r(V["sig_R"]))
    with pytest.raises(HostileCryptoError):
        hs.receive_finished({"t": "finished", "f": V["finished_I"]})


def test_the_hostile_ratchet_talks_to_itself_both_ways():
    """Two initiators' ratchets cannot talk, so check one direction against a hand-made peer:
    the victim side is emulated by a Ratchet whose first step is the responder's (§6.3)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    responder_key = X25519PrivateKey.from_private_bytes(bytes(range(0xC0, 0xE0)))
    alice = Ratchet.initiator(V["root"], V["eR"], V["transcript"], lambda n: bytes([7]) * n)
    bob = Ratchet(transcript=V["transcript"], random_bytes=lambda n: bytes([9]) * n,
                  root=V["root"], sending_key=responder_key, remote=b"")
    for text in ("ready", "one", "two"):
        head, ciphertext = alice.encrypt({"t": "text", "id": 1, "x": text})
        assert bob.decrypt(head, ciphertext)["x"] == text
    head, ciphertext = bob.encrypt({"t": "delivered", "id": 1})
    assert alice.decrypt(head, ciphertext) == {"t": "delivered", "id": 1}
    head, ciphertext = bob.encrypt({"t": "delivered", "id": 2})
    with pytest.raises(HostileCryptoError):
        alice.decrypt(head, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]))
    assert alice.decrypt(head, ciphertext) == {"t": "delivered", "id": 2}


def test_the_hostile_responder_reproduces_the_documented_vector():
    identity = Ed25519PrivateKey.from_private_bytes(bytes(range(0x20, 0x40)))
    ephemeral = iter([bytes(range(0xC0, 0xE0))])
    hs = ResponderV2(identity, V["idI"], V["m"], lambda size: next(ephemeral))
    commit = {"t": "commit", "v": 2, "m": V["m"], "c": V["c"]}
    assert hs.receive_commit(commit) == hello_r(V["sig_R"])
    keys = hs.receive_hello({"t": "hello", "v": 2, "m": V["m"], "e": V["eI"], "s": V["sig_I"]})
    assert (keys.transcript, keys.root, keys.safety) == (V["transcript"], V["root"],
                                                         "60099 39027 03837")
    hs.receive_finished({"t": "finished", "f": V["finished_I"]})
    assert hs.finished() == {"t": "finished", "f": V["finished_R"]}
    with pytest.raises(HostileCryptoError):
        hs.receive_hello({"t": "hello", "v": 2, "m": V["m"], "e": bytes(32), "s": V["sig_I"]})


def test_the_hostile_topic_key_is_the_documented_one():
    """protocol.md §3.3: interest "cinema", epoch 5898000 (Unix time 1769400000), shard 0."""
    assert topic_key("cinema", 1769400000).hex() == (
        "122080be95c20eeed46384870e0e3264358e530638e9810a7f5651fbf3d17285d369")


def test_the_hostile_peer_franks_texts_as_the_documented_vector():
    """§6.11.2: the franking vector, computed by the hostile peer from the document."""
    from hostile.crypto import franked_text

    identity = Ed25519PrivateKey.from_private_bytes(bytes(range(0x00, 0x20)))
    key = bytes(range(0xA0, 0xC0))
    text = franked_text(identity, bytes(range(0x40, 0x50)), 1, 9, "hello, stranger",
                        lambda size: key)
    assert text == {"t": "text", "id": 9, "x": "hello, stranger", "k": key, "g": bytes.fromhex(
        "7b59cd16a128cd684d039248493670d2efb0353c0e956a3d5200bb2ae8a72322"
        "4752637db23927cf8ae94e15ca86e8f94b2b3bf1a574b096947bdb3c2da48c08")}
