"""The js-libp2p peer of ``tests/foreign/dialer/`` (npm packages, Node 20+): echo, and dial on request.

:func:`install` runs ``npm ci`` once (``node_modules`` stays in the
directory, so later runs start at once); :class:`JsEchoPeer` runs ``node
peer.mjs``, reads the address it prints, and asks it to dial.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import npmpeers
from npmpeers import Unavailable  # noqa: F401  (raised by install; the tests import it from here)

DIALER_DIR = Path(__file__).resolve().parent / "dialer"
ECHO = "/strangers/echo/1.0.0"


def install() -> None:
    """``npm ci`` in ``DIALER_DIR`` unless its node_modules match the lock file already."""
    npmpeers.install(DIALER_DIR)


class JsEchoPeer:
    """``node peer.mjs``: a js-libp2p node on 127.0.0.1 answering /strangers/echo/1.0.0."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", "peer.mjs"], cwd=DIALER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            first = self.lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise RuntimeError("the js-libp2p peer did not start: "
                               f"{self.proc.stderr.read() if self.proc.stderr else ''}") from None
        self.peer_id: str = first["peer"]
        self.addr: str = first["addrs"][0]
        self.port = int(self.addr.split("/tcp/")[1].split("/")[0])
        self.protocols: list[str] = first["protocols"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                continue

    def echo_from(self, addr: str, payload: bytes, protocol: str = ECHO, timeout: float = 20) -> dict:
        """Ask the js peer to dial ``addr``, send ``payload`` on ``protocol`` and read it back."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"dial": addr, "protocol": protocol,
                                          "payload": payload.hex()}) + "\n")
        self.proc.stdin.flush()
        return self.lines.get(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
