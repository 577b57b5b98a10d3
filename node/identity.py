"""Node identity: an Ed25519 key pair, fresh by default (no account, like Omegle).

``--identity FILE`` keeps one across runs. The file holds the private key in
libp2p's protobuf encoding (the format go-libp2p and js-libp2p use), and is
created with mode 0600 and refused if others can read it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from strangers.crypto import pow
from strangers.errors import ConfigError

from .store import DataDir

logger = logging.getLogger(__name__)

MAX_IDENTITY_FILE = 4096


@dataclass(frozen=True)
class Identity:
    """A libp2p key pair and the same key for our own signatures."""

    key_pair: KeyPair

    @property
    def peer_id(self) -> ID:
        return ID.from_pubkey(self.key_pair.public_key)

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The identity key as a ``cryptography`` key (for the chat handshake)."""
        return Ed25519PrivateKey.from_private_bytes(self.key_pair.private_key.to_bytes())

    @property
    def public_bytes(self) -> bytes:
        return self.key_pair.public_key.to_bytes()


def fresh_identity() -> Identity:
    """A new random identity (the default: every run is a new stranger)."""
    return Identity(create_new_key_pair())


def load_or_create_identity(path: Path) -> Identity:
    """Read the identity in ``path``, creating it (mode 0600) if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)
    except OSError as exc:
        raise ConfigError(f"cannot create identity file {str(path)!r}: {exc.strerror}") from None
    identity = fresh_identity()
    with os.fdopen(fd, "wb") as handle:
        handle.write(identity.key_pair.private_key.serialize())
    return identity


def _load(path: Path) -> Identity:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"identity file {str(path)!r} is readable by others "
                f"(mode {stat.S_IMODE(info.st_mode):o}); run: chmod 600 {path}"
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_IDENTITY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read identity file {str(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_IDENTITY_FILE:
        raise ConfigError(f"identity file {str(path)!r} is too large to be a key")
    try:
        private_key = deserialize_private_key(data)
    except Exception:  # protobuf and key parsing raise many types
        raise ConfigError(f"identity file {str(path)!r} does not hold a libp2p private key") from None
    if private_key.get_type() != KeyType.Ed25519:
        raise ConfigError(f"identity file {str(path)!r} holds a non-Ed25519 key")
    return Identity(KeyPair(private_key, private_key.get_public_key()))


# -- identity proofs (crypto/pow.py): kept beside the key, or pre-minted for the next run ---------

PROOF_SUFFIX = ".pow"
NEXT_IDENTITY_FILE = "next-identity.json"
"""In the data directory: a fresh identity and its proof, minted during one
run for the next one (used once, then deleted), so only the first launch
ever waits for a proof."""


def proof_path(identity_file: Path) -> Path:
    """Where the proof of ``--identity FILE`` is kept: ``FILE.pow``."""
    return identity_file.with_name(identity_file.name + PROOF_SUFFIX)


def _valid_proof(identity: Identity, text: object, bits: int) -> bytes | None:
    if not isinstance(text, str) or len(text) != 2 * pow.NONCE_BYTES:
        return None
    try:
        proof = bytes.fromhex(text)
    except ValueError:
        return None
    return proof if pow.identity_valid(identity.peer_id.to_bytes(), proof, bits) else None


def load_proof(identity_file: Path, identity: Identity, bits: int) -> bytes | None:
    """The kept proof of ``identity``, if there is one good for ``bits``."""
    try:
        with open(proof_path(identity_file), "rb") as handle:
            document = json.loads(handle.read(MAX_IDENTITY_FILE))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return _valid_proof(identity, document.get("proof") if isinstance(document, dict) else None,
                        bits)


def save_proof(identity_file: Path, proof: bytes) -> None:
    """Keep ``proof`` beside ``--identity FILE`` (0600); a failure is only logged."""
    path = proof_path(identity_file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"version": 1, "proof": proof.hex()}, handle)
    except OSError as exc:
        logger.warning("cannot keep the identity proof in %s: %s", path, exc.strerror)


def take_next_identity(data: DataDir, bits: int) -> tuple[Identity, bytes] | None:
    """The identity minted for this run by the last one, if any; taken once.

    The file is first renamed to a name of this process's own (an atomic
    step: of two nodes starting at once, only one gets it), then read and
    deleted.
    """
    path = data.path(NEXT_IDENTITY_FILE)
    taken = path.with_name(f".{NEXT_IDENTITY_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        os.rename(path, taken)
    except OSError:  # none, or another node took it
        return None
    try:
        with open(taken, "rb") as handle:
            document = json.loads(handle.read(MAX_IDENTITY_FILE))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    finally:
        with suppress(OSError):
            taken.unlink()
    if not isinstance(document, dict) or not isinstance(document.get("key"), str):
        return None
    try:
        private_key = deserialize_private_key(base64.b64decode(document["key"], validate=True))
    except Exception:  # base64, protobuf and key parsing raise many types
        return None
    if private_key.get_type() != KeyType.Ed25519:
        return None
    identity = Identity(KeyPair(private_key, private_key.get_public_key()))
    proof = _valid_proof(identity, document.get("proof"), bits)
    return None if proof is None else (identity, proof)


def keep_next_identity(data: DataDir, identity: Identity, proof: bytes) -> None:
    """Keep a fresh identity and its proof for the next run (0600)."""
    data.write_json(NEXT_IDENTITY_FILE, {
        "version": 1,
        "key": base64.b64encode(identity.key_pair.private_key.serialize()).decode("ascii"),
        "proof": proof.hex(),
    })


def has_next_identity(data: DataDir) -> bool:
    return data.path(NEXT_IDENTITY_FILE).exists()
