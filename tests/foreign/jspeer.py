"""The js-libp2p Kademlia peer of ``tests/foreign/kad/`` (npm packages, Node 20+).

:func:`install` runs ``npm ci`` once (``node_modules`` stays in the directory,
so later runs start at once); :class:`JsKadPeer` runs ``node peer.mjs`` and
reads the address it prints.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path

KAD_DIR = Path(__file__).resolve().parent / "kad"


class Unavailable(Exception):
    """Node or npm is missing, or the packages could not be installed (the message says which)."""


def install() -> None:
    """``npm ci`` in ``tests/foreign/kad`` unless its node_modules match the lock file already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Unavailable("node and npm are needed for the js-libp2p peer (Node 20 or later)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        raise Unavailable(f"the js-libp2p peer needs Node 20 or later, this is {version!r}")
    marker = KAD_DIR / "node_modules" / ".package-lock.json"
    lock = KAD_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=KAD_DIR,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise Unavailable(f"npm ci failed in {KAD_DIR}: {done.stderr.strip()[-500:]}")


class JsKadPeer:
    """``node peer.mjs``: a js-libp2p node serving only /ipfs/kad/1.0.0 on 127.0.0.1."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", "peer.mjs"], cwd=KAD_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.added: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            first = self.lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise RuntimeError("the js-libp2p peer did not start: "
                               f"{self.proc.stderr.read() if self.proc.stderr else ''}") from None
        self.peer_id: str = first["peer"]
        self.addr: str = first["addrs"][0]
        self.protocols: list[str] = first["protocols"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "added" in item:
                self.added.append(item["added"])
            else:
                self.lines.put(item)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
