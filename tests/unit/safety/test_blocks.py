"""The block list and the one refusal gate (safety/blocks.py)."""

from __future__ import annotations

import pytest

from strangers.errors import ConfigError
from strangers.safety.blocks import Block, BlockList, RefusalGate, check_peer_id

A = "12D3KooWA" + "a" * 43
B = "12D3KooWB" + "b" * 43
C = "QmC" + "c" * 43


def test_block_refuses_and_unblock_undoes() -> None:
    blocks = BlockList()
    assert blocks.refuses(A) is None
    entry = blocks.block(A, 100.0, ("cinema",))
    assert entry == Block(A, 100.0, ("cinema",))
    assert blocks.refuses(A) == "blocked" and A in blocks and len(blocks) == 1
    assert blocks.refuses(B) is None
    assert blocks.unblock(A) and not blocks.unblock(A)
    assert blocks.refuses(A) is None


def test_blocking_again_refreshes_and_moves_last() -> None:
    blocks = BlockList()
    blocks.block(A, 1.0)
    blocks.block(B, 2.0)
    blocks.block(A, 3.0, ("chess",))
    assert [b.peer_id for b in blocks.entries()] == [B, A]
    assert blocks.entries()[-1].since == 3.0


def test_the_list_is_bounded_oldest_first_out() -> None:
    blocks = BlockList(limit=2)
    blocks.block(A, 1.0)
    blocks.block(B, 2.0)
    blocks.block(C, 3.0)
    assert [b.peer_id for b in blocks.entries()] == [B, C]
    assert blocks.refuses(A) is None


def test_the_file_round_trips() -> None:
    blocks = BlockList()
    blocks.block(A, 1.5, ("cinema", "chess"))
    blocks.block(B, 2.5)
    again = BlockList.from_json(blocks.to_json())
    assert again.entries() == blocks.entries()
    assert blocks.to_json()["version"] == 1


@pytest.mark.parametrize("document", [None, [], "x", {"blocks": "x"}, {"blocks": [1, None]}])
def test_a_damaged_file_reads_as_empty(document: object) -> None:
    assert len(BlockList.from_json(document)) == 0


def test_bad_entries_are_skipped_good_ones_kept() -> None:
    document = {"blocks": [
        {"peer_id": "not a peer id!", "since": 1},
        {"peer_id": A, "since": "yesterday"},
        {"peer_id": A, "since": True},
        {"peer_id": B, "since": 5, "interests": "cinema"},
        {"peer_id": C, "since": 6, "interests": ["x" * 500]},
    ]}
    entries = BlockList.from_json(document).entries()
    assert entries == [Block(B, 5.0, ()), Block(C, 6.0, ("x" * 64,))]
    big = {"blocks": [{"peer_id": A[:-5] + f"{i:05d}".replace("0", "z"), "since": i}
                      for i in range(50)]}
    assert len(BlockList.from_json(big, limit=10)) == 10


@pytest.mark.parametrize("text", ["", "x", "0OIl" * 3, "a" * 129, None, 5, "12D3 Koo"])
def test_peer_ids_are_checked(text: object) -> None:
    with pytest.raises(ConfigError):
        check_peer_id(text)


def test_the_gate_asks_every_source_in_order() -> None:
    blocks = BlockList()
    gate = RefusalGate(blocks.refuses)
    assert gate.refuses(A) is None
    gate.add(lambda peer: "on list school" if peer in (A, B) else None)
    assert gate.refuses(A) == "on list school"
    blocks.block(A, 1.0)
    assert gate.refuses(A) == "blocked"  # the user's own block is asked first
    assert gate.refuses(B) == "on list school"
    assert gate.refuses(C) is None
