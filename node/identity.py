"""Node identity: an Ed25519 key pair, fresh by default (no account, like Omegle).

``--identity FILE`` keeps one across runs. The file holds the private key in
libp2p's protobuf encoding (the format go-libp2p and js-libp2p use), and is
created with mode 0600 and refused if others can read it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from strangers.errors import ConfigError

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
