"""Who may import whom (docs: STYLE.md, "Architecture"), checked on the source's syntax trees.

Every ``import`` and ``from ... import`` counts, at any depth (inside
functions too), with relative imports resolved to ``strangers.*`` names. The
rules:

* ``crypto/`` uses nothing of ours but ``strangers.errors``; ``discovery/``
  only ``crypto`` and ``errors``; nothing imports ``cli/`` (but the
  ``python -m strangers`` entry point), and ``node/`` never does;
* pure modules (``crypto/``, ``discovery/``, ``safety/``) import no clock, no
  randomness and no I/O: no trio, asyncio, py-libp2p, os, socket, time,
  datetime, random, secrets, ... (:data:`IMPURE`); the exceptions are the
  *type* of an injected generator, ``from random import Random``, and imports
  under ``if TYPE_CHECKING:`` (they never run);
* py-libp2p is imported only under ``node/``, and its private names (a part
  starting with ``_``) and the internals we patch (:data:`LIBRARY_INTERNALS`)
  only under ``node/libp2p/``, the adapter package;
* outside ``node/`` code sees only ``strangers.node``'s public face
  (:data:`PUBLIC_NODE_MODULES`, and of the package itself only its ``__all__``);
* no import cycles among our modules (imports run at module level).
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
    "safety": "strangers.safety",  # future: pure policy (DESIGN.md)
    "node": "strangers.node",
    "cli": "strangers.cli",
    "strangers": "strangers",
}

PURE = {"crypto", "discovery", "safety"}
IMPURE = {
    # concurrency and networking
    "trio", "anyio", "asyncio", "libp2p", "socket", "ssl", "select", "selectors", "zeroconf",
    "threading", "multiprocessing", "concurrent", "subprocess", "signal",
    # clocks and randomness
    "time", "datetime", "random", "secrets", "uuid",
    # files, the OS, the user
    "os", "pathlib", "shutil", "tempfile", "io.open", "urllib", "http", "platformdirs",
    "prompt_toolkit", "sqlite3",
}
"""Top-level modules a pure module may not import (a name, or a name under it)."""
PURE_EXCEPTIONS = {"random.Random"}
"""Allowed anyway: ``from random import Random`` is the type of a generator passed in."""

ADAPTERS = "node/libp2p/"
LIBRARY_INTERNALS = {
    "get_network", "auto_connector", "retry_config", "connection_config", "provider_store",
    "discovered_services", "mDNS", "muxed_stream", "remove_conn",
}
"""Attributes of py-libp2p objects that only the adapter package touches (the swarm,
the DHT's stores and table, the mDNS listener, the muxer)."""

PUBLIC_NODE_MODULES = {
    "strangers.node",
    "strangers.node.events",
    "strangers.node.config",
    "strangers.node.commands",  # the Command types of Node.apply, once they exist
}
"""``strangers.node``'s public face: what cli/ (and any program) may import."""

ENTRY_POINTS = {"strangers/__main__.py"}
"""``python -m strangers`` is the CLI's entry point: the one place outside cli/ that starts it."""


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository, e.g. "discovery/matcher.py"
    line: int
    module: str  # absolute dotted name, e.g. "strangers.errors" or "trio"
    source: str = ""  # the module imported from ("from X import y": X; "import X": X)
    top_level: bool = True  # runs when the module is imported (not in a function, not TYPE_CHECKING)
    type_only: bool = False  # under ``if TYPE_CHECKING:``: never runs

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}"


def module_of(relative: str) -> str:
    """The dotted name of a source file: node/libp2p/kad.py -> strangers.node.libp2p.kad."""
    parts = relative.removesuffix(".py").split("/")
    name = ".".join([PACKAGES[parts[0]], *parts[1:]])
    return name.removesuffix(".__init__")


def package_of(relative: str) -> str:
    """The package relative imports in ``relative`` start from."""
    module = module_of(relative)
    return module if relative.endswith("__init__.py") else module.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(source: str, relative: str) -> Iterator[Import]:
    """Every module ``source`` (the file ``relative``) imports, as absolute names."""
    package = package_of(relative)

    def walk(node: ast.AST, top_level: bool, type_only: bool = False) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(relative, child.lineno, alias.name, alias.name, top_level, type_only)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    if child.level - 1 > len(parts) - 1:
                        raise AssertionError(f"{relative}:{child.lineno}: relative import beyond strangers")
                    base = ".".join(parts[: len(parts) - (child.level - 1)])
                    module = f"{base}.{child.module}" if child.module else base
                else:
                    module = child.module or ""
                # "from strangers import cli" imports strangers.cli: keep the name imported
                for alias in child.names:
                    yield Import(relative, child.lineno, f"{module}.{alias.name}", module, top_level, type_only)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, False, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), False, True)
                for statement in child.orelse:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), top_level, type_only)
            else:
                yield from walk(child, top_level, type_only)

    yield from walk(ast.parse(source, filename=relative), True)


def within(module: str, *prefixes: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def public_node_names() -> set[str]:
    """``strangers.node.__all__``, read from node/__init__.py's syntax tree."""
    tree = ast.parse((ROOT / "node" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("node/__init__.py has no __all__: the public face must be spelled out")


def reaches_past_public_face(imp: Import, public_names: set[str]) -> bool:
    if not within(imp.module, "strangers.node"):
        return False
    if imp.source == imp.module:  # "import strangers.node.x"
        return imp.module not in PUBLIC_NODE_MODULES
    if imp.source == "strangers.node":  # "from strangers.node import x"
        name = imp.module.rpartition(".")[2]
        return name not in public_names and imp.module not in PUBLIC_NODE_MODULES
    return imp.source not in PUBLIC_NODE_MODULES


def violations(relative: str, source: str, public_names: set[str] | None = None) -> list[str]:
    """The rules broken by one file, each naming the file, line and import."""
    directory, name = relative.split("/")[0], relative.split("/")[-1]
    public = public_node_names() if public_names is None else public_names
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
        if directory == "safety":
            if ours and not within(module, "strangers.errors", "strangers.crypto", "strangers.safety"):
                broken.append(f"{imp}: safety/ may use only strangers.crypto, .errors and .safety")
        impure = within(module, *IMPURE) and not within(module, *PURE_EXCEPTIONS)
        if directory in PURE and impure and not imp.type_only:
            broken.append(f"{imp}: {name} is a pure module (no clock, randomness or I/O)")
        if within(module, "libp2p"):
            if directory != "node":
                broken.append(f"{imp}: py-libp2p is imported only under node/")
            elif not relative.startswith(ADAPTERS) and any(
                part.startswith("_") and not part.startswith("__") for part in module.split(".")
            ):
                broken.append(f"{imp}: a private py-libp2p name, allowed only in {ADAPTERS}")
        if directory != "node" and reaches_past_public_face(imp, public):
            broken.append(
                f"{imp}: outside node/ only strangers.node's public face "
                f"({', '.join(sorted(PUBLIC_NODE_MODULES))}, and strangers.node.__all__)"
            )
        if directory == "node" and within(module, "strangers.cli"):
            broken.append(f"{imp}: node/ must not import the CLI")
        if directory != "cli" and relative not in ENTRY_POINTS and within(module, "strangers.cli"):
            broken.append(f"{imp}: nothing outside cli/ imports strangers.cli")
    if not relative.startswith(ADAPTERS):
        for node in ast.walk(ast.parse(source, filename=relative)):
            if isinstance(node, ast.Attribute) and node.attr in LIBRARY_INTERNALS:
                broken.append(
                    f"{relative}:{node.lineno} touches .{node.attr}: py-libp2p internals only in {ADAPTERS}"
                )
    return broken


def source_files() -> list[str]:
    files = []
    for directory in PACKAGES:
        for path in sorted((ROOT / directory).rglob("*.py")):
            files.append(path.relative_to(ROOT).as_posix())
    return files


FILES = source_files()


def import_graph(files: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the project modules it imports when it is imported (top level)."""
    modules = {module_of(relative): relative for relative in files}
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for relative, source in files.items():
        for imp in imports_in(source, relative):
            if not imp.top_level or not within(imp.module, "strangers"):
                continue
            target = imp.module
            while target and target not in modules:  # "from .config import NodeConfig" -> .config
                target = target.rpartition(".")[0]
            if target and target != module_of(relative):
                graph[module_of(relative)].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_walk_sees_the_code() -> None:
    for expected in ("crypto/primitives.py", "discovery/matcher.py", "node/libp2p/kad.py",
                     "node/node.py", "cli/format.py", "strangers/errors.py"):
        assert expected in FILES
    assert module_of("node/libp2p/kad.py") == "strangers.node.libp2p.kad"
    assert module_of("node/__init__.py") == "strangers.node"


@pytest.mark.parametrize("relative", FILES)
def test_import_rules(relative: str) -> None:
    broken = violations(relative, (ROOT / relative).read_text(encoding="utf-8"))
    assert not broken, "import rules broken:\n  " + "\n  ".join(broken)


def test_no_import_cycles() -> None:
    graph = import_graph({relative: (ROOT / relative).read_text(encoding="utf-8") for relative in FILES})
    assert sum(len(targets) for targets in graph.values()) > 30  # the graph was built
    found = cycles(graph)
    assert not found, "import cycles (module-level imports):\n  " + "\n  ".join(" <-> ".join(c) for c in found)


def test_the_public_face_is_importable_and_spelled_out() -> None:
    import strangers.node

    names = public_node_names()
    assert {"open_node", "Node", "NodeConfig", "events"} <= names
    assert set(strangers.node.__all__) == names
    for name in names:
        assert hasattr(strangers.node, name), name


def test_every_package_is_installed() -> None:
    """A folder with an __init__.py that pyproject.toml does not list works from the
    source tree (editable install) and is missing from a real install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {package_of(relative) for relative in FILES if relative.endswith("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"


# --- the checker itself: it must catch what it is meant to catch --------------------------

PUBLIC = {"open_node", "Node", "NodeConfig", "events", "quiet_library_logs"}


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
        ("discovery/other.py", "import trio.lowlevel", "other.py is a pure module"),
        ("discovery/kad.py", "from libp2p.peer.id import ID", "py-libp2p is imported only under node/"),
        ("discovery/topics.py", "from strangers.node import events", "discovery/ may use only"),
        ("discovery/topics.py", "from strangers import __version__", "imports strangers.__version__"),
        ("node/node.py", "from strangers.cli.format import format_event", "node/ must not import the CLI"),
        ("node/node.py", "from strangers import cli", "imports strangers.cli"),
        ("strangers/errors.py", "import strangers.cli.main", "nothing outside cli/ imports strangers.cli"),
        ("crypto/ratchet.py", "from strangers.cli import commands", "nothing outside cli/"),
        # clocks, randomness and I/O in pure modules
        ("discovery/matcher.py", "import random", "imports random: matcher.py is a pure module"),
        ("discovery/matcher.py", "from random import randint", "imports random.randint"),
        ("crypto/primitives.py", "import os", "imports os: primitives.py is a pure module"),
        ("crypto/primitives.py", "from os import urandom", "pure module"),
        ("crypto/primitives.py", "import secrets", "pure module"),
        ("discovery/search.py", "import time", "search.py is a pure module"),
        ("discovery/search.py", "from datetime import datetime", "pure module"),
        ("discovery/search.py", "import asyncio", "pure module"),
        ("safety/limits.py", "import socket", "limits.py is a pure module"),
        ("safety/limits.py", "from strangers.node import events", "safety/ may use only"),
        ("discovery/search.py", "def f():\n    import time", "discovery/search.py:2 imports time"),
        # py-libp2p's private names and internals only in the adapter package
        ("node/node.py", "from libp2p.kad_dht.kad_dht import _encode_key", "a private py-libp2p name"),
        ("node/chat.py", "host.get_network().remove_conn(conn)", "touches .get_network"),
        ("node/node.py", "swarm.auto_connector.maybe_connect = f", "touches .auto_connector"),
        ("cli/main.py", "import libp2p", "py-libp2p is imported only under node/"),
        # the public face
        ("cli/main.py", "from strangers.node.libp2p.host import quiet_library_logs", "public face"),
        ("cli/main.py", "from strangers.node.node import Node", "public face"),
        ("cli/main.py", "import strangers.node.chat", "public face"),
        ("cli/main.py", "from strangers.node import chat", "public face"),
        ("strangers/testing.py", "from strangers.node.matching import MatchService", "public face"),
    ],
)
def test_the_checker_names_the_file_and_the_import(relative: str, source: str, expected: str) -> None:
    broken = violations(relative, source, PUBLIC)
    assert any(expected in message for message in broken), broken


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("crypto/ratchet.py", "from strangers.errors import CryptoError\nfrom .primitives import hkdf\nimport msgpack"),
        ("crypto/frames.py", "from . import handshake\nimport reprlib\nimport hashlib"),
        ("discovery/matcher.py", "from random import Random\nfrom strangers.crypto import primitives"),
        ("discovery/matcher.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import random"),
        ("node/libp2p/kad.py", "import trio\nfrom libp2p.kad_dht.kad_dht import _encode_key\nfrom .kadpool import P"),
        ("node/libp2p/streamio.py", "from libp2p.network.stream.exceptions import StreamEOF\nh.get_network()"),
        ("node/node.py", "import trio\nfrom libp2p.peer.id import ID\nfrom .libp2p.kad import StrangersDHT"),
        ("cli/main.py", "from .format import format_event\nfrom strangers.cli import commands"),
        ("cli/main.py", "from strangers.node import NodeConfig, open_node, events, quiet_library_logs"),
        ("cli/main.py", "from strangers.node.events import Ready\nfrom strangers.node import config"),
        ("cli/main.py", "import strangers.node.events\nfrom strangers.node.config import DEFAULT_LISTEN"),
        ("strangers/__main__.py", "from strangers.cli.main import entry"),
        ("discovery/trio_helpers.py", "import triolet"),  # a name starting with "trio" is not trio
        ("discovery/topics.py", "import timeit_free_name as timelike"),  # nor "time..."
    ],
)
def test_the_checker_allows_what_is_allowed(relative: str, source: str) -> None:
    assert violations(relative, source, PUBLIC) == []


def test_relative_imports_resolve_to_strangers_names() -> None:
    found = {imp.module for imp in imports_in("from . import events\nfrom .config import X\nfrom .. import errors",
                                             "node/__init__.py")}
    assert found == {"strangers.node.events", "strangers.node.config.X", "strangers.errors"}
    found = {imp.module for imp in imports_in("from .streamio import read\nfrom ..identity import Identity",
                                             "node/libp2p/kad.py")}
    assert found == {"strangers.node.libp2p.streamio.read", "strangers.node.identity.Identity"}


def test_the_cycle_finder_finds_cycles_and_only_module_level_ones() -> None:
    files = {
        "cli/interactive.py": "from .session import handle_user_line",
        "cli/session.py": "from .format import HELP\ndef run():\n    from .interactive import run_terminal_ui",
        "cli/format.py": "from strangers.node import events",
        "node/__init__.py": "from . import events",
        "node/events.py": "",
    }
    assert cycles(import_graph(files)) == []
    files["cli/session.py"] = "from .format import HELP\nfrom .interactive import run_terminal_ui"
    assert cycles(import_graph(files)) == [["strangers.cli.interactive", "strangers.cli.session"]]
    files["cli/format.py"] = "from .interactive import x"
    files["cli/session.py"] = "from .format import HELP"
    three = ["strangers.cli.format", "strangers.cli.interactive", "strangers.cli.session"]
    assert cycles(import_graph(files)) == [three]
