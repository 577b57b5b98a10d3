"""The js-libp2p peers' npm packages (Node 20+), installed once per directory as locked.

Each peer directory under ``tests/foreign/`` has its ``package.json`` and
``package-lock.json``; :func:`install` runs ``npm ci`` there unless its
``node_modules`` match the lock file already.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


class Unavailable(Exception):
    """Node or npm is missing, or the packages could not be installed (the message says which)."""


def install(directory: Path) -> None:
    """``npm ci`` in ``directory`` unless its node_modules match the lock file already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Unavailable("node and npm are needed for the js-libp2p peer (Node 20 or later)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        raise Unavailable(f"the js-libp2p peer needs Node 20 or later, this is {version!r}")
    marker = directory / "node_modules" / ".package-lock.json"
    lock = directory / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise Unavailable(f"npm ci failed in {directory}: {done.stderr.strip()[-500:]}")
