"""bench/run.py's preparations: a returning user's data directory, and the CPU a process used."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import run  # noqa: E402  (bench/ is not a package)
from homes import Minted  # noqa: E402

from strangers.crypto import pow  # noqa: E402
from strangers.node.identity import take_next_identity  # noqa: E402
from strangers.node.store import DataDir  # noqa: E402


def test_a_premint_home_gives_the_next_launch_a_proven_identity(tmp_path, monkeypatch):
    monkeypatch.setenv(pow.POW_BITS_ENV, "6")
    minted = Minted(reuse=True)
    minted.ahead(2)
    monkeypatch.setattr(run, "MINTED", minted)
    homes = [tmp_path / name for name in ("a", "b", "c")]
    for home in homes:
        home.mkdir()
        run.MINTED.premint_into(home)
    taken = [take_next_identity(DataDir(home), 6) for home in homes]
    assert all(entry is not None for entry in taken)  # a valid proof at the network's bits
    ids = [entry[0].peer_id for entry in taken if entry is not None]
    assert ids[0] != ids[1] and ids[2] == ids[0]  # handed out in turn
    assert take_next_identity(DataDir(homes[0]), 6) is None  # used once


def test_cpu_seconds_reads_this_process():
    before = run.cpu_seconds(os.getpid())
    sum(range(2_000_000))
    after = run.cpu_seconds(os.getpid())
    assert before is not None and after is not None and after >= before
    assert run.cpu_seconds(2**22 + 12345) is None  # no such process
