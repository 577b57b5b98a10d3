"""A ``strangers web --no-browser`` process for the page's end-to-end tests: started, its URL read, stopped."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from urllib.parse import urlsplit

from strangers.testing import LOOPBACK, strangers_command

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/\?t=[A-Za-z0-9_-]+)")


class WebProcess:
    """``strangers web --no-browser --no-mdns --listen 127.0.0.1`` with the given bootstrap and options."""

    def __init__(self, *extra: str, bootstrap: str | None = None) -> None:
        args = ["web", "--no-browser", "--no-mdns", "--listen", LOOPBACK]
        args += ["--bootstrap", bootstrap] if bootstrap else ["--no-bootstrap"]
        self.proc = subprocess.Popen([*strangers_command(), *args, *extra], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
                                     start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def wait_url(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no URL within {timeout} s; printed: {self.output!r}") from None
            if line is None:
                stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"strangers web ended: {self.output!r} {stderr}")
            self.output.append(line)
            found = URL_LINE.search(line)
            if found:
                self.url = found.group(1)
                parts = urlsplit(self.url)
                self.port = parts.port
                self.token = parts.query.split("=", 1)[1]
                return self.url

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode
