"""Trust evaluation (safety/lists.py): only chosen lists count; a newer version replaces."""

from __future__ import annotations

from strangers.safety.lists import TrustedLists

A, B, OTHER = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


def test_only_subscribed_lists_and_only_newer_versions_count() -> None:
    lists = TrustedLists([A, B, A])
    assert lists.curators == (A, B)
    assert lists.refuses("peer-x") is None
    assert not lists.offer(OTHER, 5, "not mine", ["peer-x"])  # nobody chose it
    assert lists.refuses("peer-x") is None
    assert lists.offer(A, 2, "school", ["peer-x", "peer-y"])
    assert "school" in lists.refuses("peer-x") and A.hex()[:8] in lists.refuses("peer-x")
    assert not lists.offer(A, 1, "school", [])  # stale: ignored
    assert not lists.offer(A, 2, "school", [])  # same version: ignored
    assert lists.refuses("peer-y") is not None
    assert lists.offer(A, 3, "school", ["peer-y"])  # peer-x removed in version 3
    assert lists.refuses("peer-x") is None and lists.refuses("peer-y") is not None
    assert lists.offer(B, 1, "friends", ["peer-y", "peer-z"])
    assert len(lists) == 2 and lists.state(B).version == 1 and lists.state(OTHER) is None


def test_no_lists_refuse_nobody() -> None:
    lists = TrustedLists()
    assert not lists.offer(A, 1, "x", ["p"])
    assert lists.refuses("p") is None and len(lists) == 0
