"""bench/paths.py's data directories: a returning user's identity is the one the node takes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import paths  # noqa: E402  (bench/ is not a package)

from strangers.crypto import pow
from strangers.node.identity import take_next_identity
from strangers.node.store import ENV_HOME, DataDir


def test_returning_users_start_with_a_proof_and_first_launches_without(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pow.POW_BITS_ENV, "6")
    homes = paths.Homes()
    try:
        assert homes.bits == 6
        homes.premint(2)
        first, second = (Path(homes.env(True)[ENV_HOME]) for _ in range(2))
        assert first != second  # one directory per stranger
        taken = [take_next_identity(DataDir(home), 6) for home in (first, second)]
        assert all(t is not None for t in taken)
        (one, proof), (other, _) = taken  # type: ignore[misc]
        assert one.peer_id != other.peer_id
        assert pow.identity_valid(one.peer_id.to_bytes(), proof, 6)
        fresh = Path(homes.env(False)[ENV_HOME])
        assert take_next_identity(DataDir(fresh), 6) is None  # a first launch mints its own
    finally:
        root = homes.root
        homes.close()
    assert not root.exists()
