"""The js-libp2p Kademlia peer of ``tests/foreign/kad/`` (npm packages, Node 20+).

:func:`install` runs ``npm ci`` once (``node_modules`` stays in the directory,
so later runs start at once); :class:`JsKadPeer` runs ``node peer.mjs`` and
reads the address it prints.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import npmpeers
from npmpeers import Unavailable  # noqa: F401  (raised by install; the tests import it from here)

KAD_DIR = Path(__file__).resolve().parent / "kad"


def install() -> None:
    """``npm ci`` in ``KAD_DIR`` unless its node_modules match the lock file already."""
    npmpeers.install(KAD_DIR)


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
