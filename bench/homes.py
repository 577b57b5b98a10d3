"""Data directories for benchmark strangers: a returning user's, or a first launch's.

On a real network every stranger has its own machine and data directory. A
*returning* user's directory holds the identity its previous run pre-minted
(``next-identity.json``, protocol §5.9) at the network's difficulty (or
``$STRANGERS_POW_BITS``): the node proposes from ``ready``. A *first launch*'s
directory is empty: the node mints its proof while it searches (seconds of
one core). Strangers that share one directory would all but one mint, a
cost no real user pays twice, so every benchmark gives each stranger its own.

Identities are minted before any clock starts, on every core (:meth:`Minted.ahead`).
Shared by ``bench/paths.py``, ``bench/run.py`` and the crowd (``bench/loopback.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key

from strangers.crypto import pow
from strangers.node.identity import Identity, fresh_identity, keep_next_identity
from strangers.node.store import ENV_HOME, DataDir


def network_bits() -> int:
    """The identity difficulty the nodes will ask for (``$STRANGERS_POW_BITS`` or the default)."""
    return pow.Difficulty.from_env(os.environ).identity


def mint(bits: int | None = None) -> tuple[bytes, bytes]:
    """A fresh identity (its serialized private key) and its proof, as a run mints them for the next."""
    identity = fresh_identity()
    bits = network_bits() if bits is None else bits
    nonce = pow.mint_identity(identity.peer_id.to_bytes(), bits)
    assert nonce is not None  # the whole nonce space holds one
    return identity.key_pair.private_key.serialize(), pow.encode_nonce(nonce)


class Minted:
    """Identities minted ahead and handed out.

    ``reuse``: once each was handed out, hand them out again in turn (a key used
    again in a later run is one no node of that run has seen: fresh processes and
    data directories); otherwise a new one is minted when none is left, so no two
    strangers of one run ever share an identity.
    """

    def __init__(self, *, reuse: bool = False, bits: int | None = None) -> None:
        self.reuse = reuse
        self.bits = network_bits() if bits is None else bits
        self.minted: list[tuple[bytes, bytes]] = []
        self._next = 0

    def ahead(self, count: int) -> float:
        """Mint ``count`` more on every core; the seconds it took (not a measured cost)."""
        started = time.monotonic()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            self.minted += list(pool.map(mint, [self.bits] * count))
        return time.monotonic() - started

    def take(self) -> tuple[bytes, bytes]:
        if self._next < len(self.minted):
            self._next += 1
            return self.minted[self._next - 1]
        if self.reuse and self.minted:
            self._next += 1
            return self.minted[(self._next - 1) % len(self.minted)]
        return mint(self.bits)

    def premint_into(self, home: Path) -> None:
        """Leave in ``home`` an identity and its proof for the next launch, as a previous run does."""
        key, proof = self.take()
        private = deserialize_private_key(key)
        keep_next_identity(DataDir(home), Identity(KeyPair(private, private.get_public_key())), proof)


class Homes:
    """One data directory (``$STRANGERS_HOME``) per stranger, under one temporary root."""

    def __init__(self, minted: Minted | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="strangers-bench-homes-"))
        self.minted = minted if minted is not None else Minted()
        self.bits = self.minted.bits

    def premint(self, count: int) -> float:
        """Mint ``count`` identities ahead; the seconds it took."""
        return self.minted.ahead(count)

    def path(self, returning: bool) -> Path:
        """A new directory: a returning user's (an identity waiting in it) or a first launch's."""
        home = Path(tempfile.mkdtemp(dir=self.root))
        if returning:
            self.minted.premint_into(home)
        return home

    def env(self, returning: bool) -> dict[str, str]:
        """The environment a stranger needs to run with a new directory of its own."""
        return {ENV_HOME: str(self.path(returning))}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
