"""The table of patches in ``node/libp2p/__init__.py`` names canaries that exist, and every canary is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import strangers.node.libp2p as adapters

HERE = Path(__file__).resolve().parent


def _named_in_table() -> set[tuple[str, str]]:
    named: set[tuple[str, str]] = set()
    current = ""
    for match in re.finditer(r"``(test_canary_\w+\.py)?::(\w+)``", adapters.__doc__ or ""):
        current = match.group(1) or current
        named.add((current, match.group(2)))
    return named


def _canaries() -> set[tuple[str, str]]:
    found = set()
    for path in HERE.glob("test_canary_*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                found.add((path.name, node.name))
    return found


def test_every_test_the_table_names_exists() -> None:
    named = _named_in_table()
    assert len(named) >= 20  # the table was parsed
    missing = named - _canaries()
    assert not missing, f"node/libp2p/__init__.py names canaries that do not exist: {sorted(missing)}"


def test_every_canary_is_in_the_table() -> None:
    unlisted = _canaries() - _named_in_table()
    allowed = {("test_canary_kad.py", "test_newest_provider_store_keeps_the_newest"),
               ("test_canary_host.py", "test_cancellation_of_the_body_ends_the_host_cleanly")}
    assert not unlisted - allowed, f"canaries missing from node/libp2p/__init__.py: {sorted(unlisted - allowed)}"
