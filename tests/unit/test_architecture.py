"""Who may import whom (docs: STYLE.md, "Architecture"), checked on the source's syntax trees.

Every ``import`` and ``from ... import`` counts, at any depth (inside
functions too), with relative imports resolved to ``strangers.*`` names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PACKAGES = {
    "crypto": "strangers.crypto",
    "discovery": "strangers.discovery",
    "node": "strangers.node",
    "cli": "strangers.cli",
    "strangers": "strangers",
}

PURE_DISCOVERY = {"interests.py", "topics.py", "lookup.py", "matcher.py", "proposal.py"}
DISCOVERY_ADAPTERS = {"addresses.py", "kad.py", "kadpool.py", "streamio.py"}
ENTRY_POINTS = {"strangers/__main__.py"}
"""``python -m strangers`` is the CLI's entry point: the one place outside cli/ that starts it."""


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository, e.g. "discovery/matcher.py"
    line: int
    module: str  # absolute dotted name, e.g. "strangers.errors" or "trio"

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}"


def package_of(relative: str) -> str:
    directory = relative.split("/")[0]
    return PACKAGES[directory]


def imports_in(source: str, relative: str) -> Iterator[Import]:
    """Every module ``source`` (the file ``relative``) imports, as absolute names."""
    package = package_of(relative)
    for node in ast.walk(ast.parse(source, filename=relative)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 > len(parts) - 1:
                    raise AssertionError(f"{relative}:{node.lineno}: relative import beyond strangers")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # "from strangers import cli" imports strangers.cli: keep the name imported
            for alias in node.names:
                yield Import(relative, node.lineno, f"{module}.{alias.name}")


def within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def violations(relative: str, source: str) -> list[str]:
    """The rules broken by one file, each naming the file, line and import."""
    directory, name = relative.split("/")[0], relative.split("/")[-1]
    broken = []
    for imp in imports_in(source, relative):
        module = imp.module
        ours = within(module, "strangers")
        if directory == "crypto":
            if ours and not within(module, "strangers.errors", "strangers.crypto"):
                broken.append(f"{imp}: crypto/ may use only strangers.errors and strangers.crypto")
            if within(module, "trio", "libp2p"):
                broken.append(f"{imp}: crypto/ is synchronous and pure, no trio, no libp2p")
        if directory == "discovery":
            if ours and not within(module, "strangers.errors", "strangers.crypto", "strangers.discovery"):
                broken.append(f"{imp}: discovery/ may use only strangers.crypto, .errors and .discovery")
            if within(module, "trio", "libp2p") and name not in DISCOVERY_ADAPTERS:
                broken.append(f"{imp}: only {sorted(DISCOVERY_ADAPTERS)} of discovery/ may use trio or libp2p")
            if within(module, "trio", "libp2p") and name in PURE_DISCOVERY:
                broken.append(f"{imp}: {name} is a pure module")
        if directory == "node" and within(module, "strangers.cli"):
            broken.append(f"{imp}: node/ must not import the CLI")
        if directory != "cli" and relative not in ENTRY_POINTS and within(module, "strangers.cli"):
            broken.append(f"{imp}: nothing outside cli/ imports strangers.cli")
    return broken


def source_files() -> list[str]:
    files = []
    for directory in PACKAGES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            files.append(path.relative_to(ROOT).as_posix())
    return files


FILES = source_files()


def test_the_walk_sees_the_code() -> None:
    for expected in ("crypto/primitives.py", "discovery/matcher.py", "discovery/kad.py",
                     "node/node.py", "cli/format.py", "strangers/errors.py"):
        assert expected in FILES
    assert {f"discovery/{name}" for name in PURE_DISCOVERY} <= set(FILES)


@pytest.mark.parametrize("relative", FILES)
def test_import_rules(relative: str) -> None:
    broken = violations(relative, (ROOT / relative).read_text(encoding="utf-8"))
    assert not broken, "import rules broken:\n  " + "\n  ".join(broken)


# --- the checker itself: it must catch what it is meant to catch --------------------------


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        ("crypto/ratchet.py", "import trio", "crypto/ratchet.py:1 imports trio: crypto/ is synchronous"),
        ("crypto/ratchet.py", "from libp2p.peer.id import ID", "imports libp2p.peer.id.ID"),
        ("crypto/ratchet.py", "from strangers.discovery import topics", "crypto/ may use only"),
        ("crypto/ratchet.py", "from ..node import events", "imports strangers.node.events"),
        ("crypto/ratchet.py", "def f():\n    import strangers.node", "crypto/ratchet.py:2 imports strangers.node"),
        ("discovery/matcher.py", "import trio", "matcher.py is a pure module"),
        ("discovery/lookup.py", "from libp2p.kad_dht import KadDHT", "lookup.py is a pure module"),
        ("discovery/other.py", "import trio.lowlevel", "only ['addresses.py', 'kad.py', 'kadpool.py', 'streamio.py'] of discovery/"),
        ("discovery/kad.py", "from strangers.node import events", "discovery/ may use only"),
        ("discovery/kad.py", "from strangers import __version__", "imports strangers.__version__"),
        ("node/node.py", "from strangers.cli.format import format_event", "node/ must not import the CLI"),
        ("node/node.py", "from strangers import cli", "imports strangers.cli"),
        ("strangers/errors.py", "import strangers.cli.main", "nothing outside cli/ imports strangers.cli"),
        ("crypto/ratchet.py", "from strangers.cli import commands", "nothing outside cli/"),
    ],
)
def test_the_checker_names_the_file_and_the_import(relative: str, source: str, expected: str) -> None:
    broken = violations(relative, source)
    assert any(expected in message for message in broken), broken


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("crypto/ratchet.py", "from strangers.errors import CryptoError\nfrom .primitives import hkdf\nimport msgpack"),
        ("crypto/frames.py", "from . import handshake"),
        ("discovery/kad.py", "import trio\nfrom libp2p.peer.id import ID\nfrom .lookup import ALPHA"),
        ("discovery/streamio.py", "from libp2p.network.stream.exceptions import StreamEOF"),
        ("discovery/matcher.py", "from strangers.crypto import primitives\nfrom .interests import x"),
        ("node/node.py", "import trio\nfrom strangers.discovery.kad import StrangersDHT"),
        ("cli/main.py", "from .format import format_event\nfrom strangers.cli import commands"),
        ("strangers/__main__.py", "from strangers.cli.main import entry"),
        ("discovery/trio_helpers.py", "import triolet"),  # a name starting with "trio" is not trio
    ],
)
def test_the_checker_allows_what_is_allowed(relative: str, source: str) -> None:
    assert violations(relative, source) == []


def test_relative_imports_resolve_to_strangers_names() -> None:
    found = {imp.module for imp in imports_in("from . import events\nfrom .config import X\nfrom .. import errors",
                                             "node/__init__.py")}
    assert found == {"strangers.node.events", "strangers.node.config.X", "strangers.errors"}
