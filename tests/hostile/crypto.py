"""The chat cryptography of docs/protocol.md §6.2-§6.4 and the v2 handshake spec, re-derived.

Sans-IO and independent of ``strangers.crypto``: the hostile peer must find the victim's
mistakes, not share them. Randomness is passed in (``random_bytes``) so a run can be replayed.

Supported: the initiator side of the v1 handshake (both hellos at once) and of the v2 handshake
(commit, hello_R, hello_I + finished_I + Ready, finished_R); the Double Ratchet without header
encryption; the padded inner messages.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .wire import pack, unpack_map

PAD_BLOCK = 64
MAX_SKIP = 256
ED25519_PEER_ID_PREFIX = bytes.fromhex("002408011220")


class HostileCryptoError(Exception):
    """The victim's handshake or ciphertext did not verify (or the victim broke the spec)."""


RandomBytes = Callable[[int], bytes]


def raw_key_from_peer_id(peer_id_bytes: bytes) -> bytes:
    """The raw Ed25519 key inside an identity-multihash peer id (§ intro of protocol.md)."""
    if len(peer_id_bytes) != 38 or not peer_id_bytes.startswith(ED25519_PEER_ID_PREFIX):
        raise HostileCryptoError(f"not an Ed25519 peer id: {peer_id_bytes.hex()}")
    return peer_id_bytes[6:]


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(ikm)


def sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def dh(private: X25519PrivateKey, public: bytes) -> bytes:
    out = private.exchange(X25519PublicKey.from_public_bytes(public))
    if out == bytes(32):
        raise HostileCryptoError("all-zero X25519 output")
    return out


def x25519_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def new_x25519(random_bytes: RandomBytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(random_bytes(32))


def verify(identity: bytes, signature: bytes, payload: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(identity).verify(signature, payload)
    except (InvalidSignature, ValueError):
        raise HostileCryptoError("bad hello signature") from None


def safety_code(safety: bytes) -> str:
    digits = f"{int.from_bytes(safety, 'big') % 10**15:015d}"
    return f"{digits[:5]} {digits[5:10]} {digits[10:]}"


# -- inner messages and padding (§6.4) ---------------------------------------------------------

def pad(message: dict) -> bytes:
    body = pack(message)
    plain = struct.pack(">H", len(body)) + body
    total = -(-len(plain) // PAD_BLOCK) * PAD_BLOCK
    return plain + bytes(total - len(plain))


def unpad(plain: bytes) -> dict:
    if not plain or len(plain) % PAD_BLOCK or len(plain) < 2:
        raise HostileCryptoError(f"padded plaintext of {len(plain)} bytes")
    (size,) = struct.unpack(">H", plain[:2])
    if 2 + size > len(plain) or any(plain[2 + size:]):
        raise HostileCryptoError("bad padding")
    return unpack_map(plain[2:2 + size])


# -- the Double Ratchet (§6.3) -----------------------------------------------------------------

def kdf_rk(root: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    out = hkdf(dh_out, root, b"strangers/v1/ratchet-root", 64)
    return out[:32], out[32:]


def kdf_ck(chain: bytes) -> tuple[bytes, bytes]:
    """(message key, next chain key)."""
    return hmac.new(chain, b"\x01", "sha256").digest(), hmac.new(chain, b"\x02", "sha256").digest()


def seal(message_key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    expanded = hkdf(message_key, bytes(32), b"strangers/v1/message-key", 44)
    return ChaCha20Poly1305(expanded[:32]).encrypt(expanded[32:], plaintext, ad)


def open_sealed(message_key: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    expanded = hkdf(message_key, bytes(32), b"strangers/v1/message-key", 44)
    try:
        return ChaCha20Poly1305(expanded[:32]).decrypt(expanded[32:], ciphertext, ad)
    except InvalidTag:
        raise HostileCryptoError("AEAD tag did not verify") from None


def header(dh_pub: bytes, pn: int, n: int) -> bytes:
    return dh_pub + struct.pack(">II", pn, n)


@dataclass
class Ratchet:
    """One side's Double Ratchet state (initiator start only: the hostile peer proposes)."""

    transcript: bytes
    random_bytes: RandomBytes
    root: bytes
    sending_key: X25519PrivateKey
    remote: bytes
    send_chain: bytes | None = None
    receive_chain: bytes | None = None
    sent: int = 0
    received: int = 0
    previous: int = 0
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    @classmethod
    def initiator(cls, root: bytes, remote_ephemeral: bytes, transcript: bytes,
                  random_bytes: RandomBytes) -> Ratchet:
        key = new_x25519(random_bytes)
        new_root, chain = kdf_rk(root, dh(key, remote_ephemeral))
        return cls(transcript=transcript, random_bytes=random_bytes, root=new_root,
                   sending_key=key, remote=remote_ephemeral, send_chain=chain)

    def encrypt(self, message: dict) -> tuple[bytes, bytes]:
        """(header, ciphertext) of one padded inner message."""
        if self.send_chain is None:
            raise HostileCryptoError("no sending chain")
        message_key, self.send_chain = kdf_ck(self.send_chain)
        head = header(x25519_public(self.sending_key), self.previous, self.sent)
        self.sent += 1
        return head, seal(message_key, pad(message), self.transcript + head)

    def decrypt(self, head: bytes, ciphertext: bytes) -> dict:
        """Decrypt one message; on any failure the state is left as it was (§6.3)."""
        saved = dict(vars(self), skipped=dict(self.skipped))
        try:
            return self._decrypt(head, ciphertext)
        except Exception:
            vars(self).update(saved)
            raise

    def _decrypt(self, head: bytes, ciphertext: bytes) -> dict:
        if len(head) != 40:
            raise HostileCryptoError(f"header of {len(head)} bytes")
        remote, (pn, n) = head[:32], struct.unpack(">II", head[32:])
        stored = self.skipped.pop((remote, n), None)
        if stored is not None:
            return unpad(open_sealed(stored, ciphertext, self.transcript + head))
        if remote != self.remote or self.receive_chain is None:
            self._skip(pn)
            self.root, self.receive_chain = kdf_rk(self.root, dh(self.sending_key, remote))
            self.remote, self.received = remote, 0
            self.previous, self.sent = self.sent, 0
            self.sending_key = new_x25519(self.random_bytes)
            self.root, self.send_chain = kdf_rk(self.root, dh(self.sending_key, remote))
        self._skip(n)
        if self.receive_chain is None:
            raise HostileCryptoError("no receiving chain")
        message_key, self.receive_chain = kdf_ck(self.receive_chain)
        self.received += 1
        return unpad(open_sealed(message_key, ciphertext, self.transcript + head))

    def _skip(self, until: int) -> None:
        if self.receive_chain is None:
            return
        if until - self.received > MAX_SKIP:
            raise HostileCryptoError("too many skipped messages")
        while self.received < until:
            key, self.receive_chain = kdf_ck(self.receive_chain)
            self.skipped[(self.remote, self.received)] = key
            self.received += 1


# -- handshakes, initiator side ----------------------------------------------------------------

@dataclass
class Keys:
    """What a completed handshake yields."""

    transcript: bytes
    root: bytes
    safety: str
    remote_ephemeral: bytes


@dataclass
class InitiatorV1:
    """§6.2: both hellos at once."""

    identity: Ed25519PrivateKey
    remote_identity: bytes
    match_id: bytes
    random_bytes: RandomBytes = os.urandom

    def __post_init__(self) -> None:
        self.ephemeral = new_x25519(self.random_bytes)
        self.own_identity = self.identity.public_key().public_bytes_raw()

    def hello(self) -> dict:
        payload = (b"strangers/v1/hello" + b"I" + self.match_id + x25519_public(self.ephemeral)
                   + self.own_identity + self.remote_identity)
        return {"t": "hello", "v": 1, "m": self.match_id, "e": x25519_public(self.ephemeral),
                "s": self.identity.sign(payload)}

    def receive_hello(self, hello: dict) -> Keys:
        if set(hello) != {"t", "v", "m", "e", "s"} or hello["t"] != "hello" or hello["v"] != 1:
            raise HostileCryptoError(f"not a v1 hello: {sorted(hello)}")
        if hello["m"] != self.match_id:
            raise HostileCryptoError("hello for another match")
        remote_ephemeral = hello["e"]
        verify(self.remote_identity, hello["s"],
               b"strangers/v1/hello" + b"R" + self.match_id + remote_ephemeral
               + self.remote_identity + self.own_identity)
        shared = dh(self.ephemeral, remote_ephemeral)
        transcript = sha256(b"strangers/v1/transcript", self.match_id, self.own_identity,
                            self.remote_identity, x25519_public(self.ephemeral), remote_ephemeral)
        return Keys(transcript=transcript,
                    root=hkdf(shared, transcript, b"strangers/v1/root", 32),
                    safety=safety_code(hkdf(shared, transcript, b"strangers/v1/safety", 8)),
                    remote_ephemeral=remote_ephemeral)


@dataclass
class InitiatorV2:
    """handshake-v2: commit, then R's hello, then our hello and finished, then R's finished."""

    identity: Ed25519PrivateKey
    remote_identity: bytes
    match_id: bytes
    random_bytes: RandomBytes = os.urandom

    def __post_init__(self) -> None:
        self.ephemeral = new_x25519(self.random_bytes)
        self.own_identity = self.identity.public_key().public_bytes_raw()
        self.commitment = sha256(b"strangers/v2/commit", self.match_id, self.own_identity,
                                 x25519_public(self.ephemeral))
        self._confirm: bytes | None = None
        self.keys: Keys | None = None

    def commit(self) -> dict:
        return {"t": "commit", "v": 2, "m": self.match_id, "c": self.commitment}

    def receive_hello(self, hello: dict) -> Keys:
        if set(hello) != {"t", "v", "m", "e", "s"} or hello["t"] != "hello" or hello["v"] != 2:
            raise HostileCryptoError(f"not a v2 hello: {hello!r}"[:200])
        if hello["m"] != self.match_id:
            raise HostileCryptoError("hello for another match")
        remote_ephemeral = hello["e"]
        if remote_ephemeral == x25519_public(self.ephemeral):
            raise HostileCryptoError("reflected ephemeral")
        verify(self.remote_identity, hello["s"],
               b"strangers/v2/hello" + b"R" + self.match_id + self.commitment + remote_ephemeral
               + self.remote_identity + self.own_identity)
        shared = dh(self.ephemeral, remote_ephemeral)
        transcript = sha256(b"strangers/v2/transcript", self.match_id, self.own_identity,
                            self.remote_identity, self.commitment, x25519_public(self.ephemeral),
                            remote_ephemeral)
        self._confirm = hkdf(shared, transcript, b"strangers/v2/finished", 64)
        self.keys = Keys(transcript=transcript,
                         root=hkdf(shared, transcript, b"strangers/v2/root", 32),
                         safety=safety_code(hkdf(shared, transcript, b"strangers/v2/safety", 8)),
                         remote_ephemeral=remote_ephemeral)
        return self.keys

    def hello(self) -> dict:
        payload = (b"strangers/v2/hello" + b"I" + self.match_id + self.commitment
                   + x25519_public(self.ephemeral) + self.own_identity + self.remote_identity)
        return {"t": "hello", "v": 2, "m": self.match_id, "e": x25519_public(self.ephemeral),
                "s": self.identity.sign(payload)}

    def _finished(self, role: bytes) -> bytes:
        if self._confirm is None or self.keys is None:
            raise HostileCryptoError("no keys yet")
        key = self._confirm[:32] if role == b"I" else self._confirm[32:]
        return hmac.new(key, b"strangers/v2/finished" + role + self.keys.transcript,
                        "sha256").digest()

    def finished(self) -> dict:
        return {"t": "finished", "f": self._finished(b"I")}

    def receive_finished(self, frame: dict) -> None:
        if set(frame) != {"t", "f"} or frame["t"] != "finished":
            raise HostileCryptoError(f"not a finished frame: {frame!r}"[:200])
        if not hmac.compare_digest(frame["f"], self._finished(b"R")):
            raise HostileCryptoError("finished_R does not verify")


def franked_text(identity: Ed25519PrivateKey, match_id: bytes, seq: int, text_id: int,
                 text: str, random_bytes: RandomBytes = os.urandom) -> dict:
    """The inner map of the sender's ``seq``-th text of the chat, franked (§6.11)."""
    key = random_bytes(32)
    context = match_id + struct.pack(">Q", seq)
    commitment = hmac.new(key, b"strangers/v1/frank/commit\x00" + context + text.encode("utf-8"),
                          "sha256").digest()
    signature = identity.sign(b"strangers/v1/frank/sign\x00" + context + commitment)
    return {"t": "text", "id": text_id, "x": text, "k": key, "g": signature}


def msg_frame(head: bytes, ciphertext: bytes) -> dict:
    return {"t": "msg", "h": head, "c": ciphertext}


def open_msg(ratchet: Ratchet, frame: dict) -> dict:
    if set(frame) != {"t", "h", "c"} or frame["t"] != "msg":
        raise HostileCryptoError(f"not a msg frame: {frame!r}"[:200])
    return ratchet.decrypt(frame["h"], frame["c"])


# -- handshake v2, responder side (the victim proposed to us) -----------------------------------

@dataclass
class ResponderV2:
    """handshake-v2 as R: a valid commit, then our hello; their hello and finished; our finished."""

    identity: Ed25519PrivateKey
    remote_identity: bytes
    match_id: bytes
    random_bytes: RandomBytes = os.urandom

    def __post_init__(self) -> None:
        self.ephemeral = new_x25519(self.random_bytes)
        self.own_identity = self.identity.public_key().public_bytes_raw()
        self.commitment: bytes | None = None
        self._confirm: bytes | None = None
        self.keys: Keys | None = None

    def receive_commit(self, commit: dict) -> dict:
        """Check the commit and return our hello."""
        if set(commit) != {"t", "v", "m", "c"} or commit["t"] != "commit" or commit["v"] != 2:
            raise HostileCryptoError(f"not a v2 commit: {commit!r}"[:200])
        if commit["m"] != self.match_id:
            raise HostileCryptoError("commit for another match")
        self.commitment = commit["c"]
        return self.hello()

    def hello(self, commitment: bytes | None = None) -> dict:
        commitment = commitment if commitment is not None else self.commitment
        if commitment is None:
            raise HostileCryptoError("no commit yet")
        payload = (b"strangers/v2/hello" + b"R" + self.match_id + commitment
                   + x25519_public(self.ephemeral) + self.own_identity + self.remote_identity)
        return {"t": "hello", "v": 2, "m": self.match_id, "e": x25519_public(self.ephemeral),
                "s": self.identity.sign(payload)}

    def receive_hello(self, hello: dict) -> Keys:
        if self.commitment is None:
            raise HostileCryptoError("hello before commit")
        if set(hello) != {"t", "v", "m", "e", "s"} or hello["t"] != "hello" or hello["v"] != 2:
            raise HostileCryptoError(f"not a v2 hello: {hello!r}"[:200])
        remote_ephemeral = hello["e"]
        expected = sha256(b"strangers/v2/commit", self.match_id, self.remote_identity,
                          remote_ephemeral)
        if hello["m"] != self.match_id or not hmac.compare_digest(expected, self.commitment):
            raise HostileCryptoError("hello does not open the commitment")
        verify(self.remote_identity, hello["s"],
               b"strangers/v2/hello" + b"I" + self.match_id + self.commitment + remote_ephemeral
               + self.remote_identity + self.own_identity)
        shared = dh(self.ephemeral, remote_ephemeral)
        transcript = sha256(b"strangers/v2/transcript", self.match_id, self.remote_identity,
                            self.own_identity, self.commitment, remote_ephemeral,
                            x25519_public(self.ephemeral))
        self._confirm = hkdf(shared, transcript, b"strangers/v2/finished", 64)
        self.keys = Keys(transcript=transcript,
                         root=hkdf(shared, transcript, b"strangers/v2/root", 32),
                         safety=safety_code(hkdf(shared, transcript, b"strangers/v2/safety", 8)),
                         remote_ephemeral=remote_ephemeral)
        return self.keys

    def _finished(self, role: bytes) -> bytes:
        if self._confirm is None or self.keys is None:
            raise HostileCryptoError("no keys yet")
        key = self._confirm[:32] if role == b"I" else self._confirm[32:]
        return hmac.new(key, b"strangers/v2/finished" + role + self.keys.transcript,
                        "sha256").digest()

    def receive_finished(self, frame: dict) -> None:
        if set(frame) != {"t", "f"} or frame["t"] != "finished":
            raise HostileCryptoError(f"not a finished frame: {frame!r}"[:200])
        if not hmac.compare_digest(frame["f"], self._finished(b"I")):
            raise HostileCryptoError("finished_I does not verify")

    def finished(self) -> dict:
        return {"t": "finished", "f": self._finished(b"R")}

    def ratchet(self) -> Ratchet:
        """§6.3: our ratchet key is our handshake ephemeral; we send after their first message."""
        if self.keys is None:
            raise HostileCryptoError("no keys yet")
        return Ratchet(transcript=self.keys.transcript, random_bytes=self.random_bytes,
                       root=self.keys.root, sending_key=self.ephemeral, remote=b"")
