"""Drive the real ``strangers`` executable through --json (for tests, benchmarks and scripts)."""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "/ip4/127.0.0.1/tcp/0"


@functools.cache
def compile_bytecode() -> None:
    """Compile the strangers package's modules where they have no fresh bytecode.

    ``pip install`` compiles a user's copy when it installs it; a checkout
    installed with ``pip install -e`` and run with ``PYTHONDONTWRITEBYTECODE=1``
    (as on our machines) compiled every module from source at every launch,
    ~0.3 s of CPU that no user pays, inside every launch a benchmark timed.
    Once per process, before the first launch; a no-op where nothing changed.
    """
    import compileall
    import importlib.util

    for name in ("strangers", "strangers.cli", "strangers.crypto", "strangers.discovery",
                 "strangers.node", "strangers.safety"):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(location, quiet=2, workers=1)


def strangers_command() -> list[str]:
    """The installed console script, or ``python -m strangers`` next to this interpreter."""
    compile_bytecode()
    script = Path(sys.executable).with_name("strangers")
    if script.exists():
        return [str(script)]
    found = shutil.which("strangers")
    return [found] if found else [sys.executable, "-m", "strangers"]


class Strangers:
    """One ``strangers ... --json`` process; events are read by a thread into a queue."""

    def __init__(self, *args: str, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        cmd = [*(prefix or []), *strangers_command(), *args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        self.events: list[dict] = []
        self.arrivals: list[float] = []
        """``time.monotonic()`` when each event of ``events`` was read."""
        self._queue: queue.Queue[tuple[float, dict] | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self._seen = 0

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "<not json>", "line": line}
            self._queue.put((time.monotonic(), event))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace"))

    def _pull(self, timeout: float) -> bool:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return False
        if item is None:
            self._queue.put(None)
            return False
        arrival, event = item
        self.events.append(event)
        self.arrivals.append(arrival)
        return True

    def arrival_of(self, name: str) -> float | None:
        """When the first event called ``name`` was read (monotonic clock), if it was."""
        for event, arrival in zip(self.events, self.arrivals):
            if event.get("event") == name:
                return arrival
        return None

    def wait_for(self, predicate: Callable[[dict], bool] | str, timeout: float = 15.0) -> dict:
        """The first event (not returned before) matching ``predicate`` (or an event name)."""
        if isinstance(predicate, str):
            name = predicate
            predicate = lambda e: e.get("event") == name  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.events):
                event = self.events[self._seen]
                self._seen += 1
                if predicate(event):
                    return event
            left = deadline - time.monotonic()
            if left <= 0 or (not self._pull(min(left, 0.2)) and self.proc.poll() is not None
                             and self._queue.empty()):
                if left > 0 and self._queue.qsize():
                    continue
                raise AssertionError(
                    f"timed out after {timeout}s waiting in {self.args}; events: {self.events}; "
                    f"exit: {self.proc.poll()}; stderr: {''.join(self.stderr_lines)[-2000:]}"
                )

    def assert_no_event(self, predicate: Callable[[dict], bool], seconds: float) -> None:
        """No matching event shows up within ``seconds`` (used sparingly: negative checks).

        The process must still be running at the end: one that died shows no
        event either, and the check would pass for a crash.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pull(0.1)
        bad = [e for e in self.events if predicate(e)]
        assert not bad, f"unexpected events {bad}"
        exit_code = self.proc.poll()
        assert exit_code is None, (
            f"{self.args} exited ({exit_code}) while no event was expected; events: {self.events}; "
            f"stderr: {''.join(self.stderr_lines)[-2000:]}"
        )

    def send(self, obj: dict | str) -> None:
        assert self.proc.stdin is not None
        line = obj if isinstance(obj, str) else json.dumps(obj)
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): like a laptop going to sleep, it neither reads nor writes."""
        self.kill(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen process run again (SIGCONT)."""
        self.kill(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.thaw()  # a frozen process would not act on SIGTERM
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(timeout=5)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)


def serve(*extra: str) -> tuple[Strangers, str]:
    """A ``strangers serve`` node on loopback with no bootstrap; returns it and its address."""
    node = Strangers("serve", "--json", "--listen", LOOPBACK, "--no-bootstrap", "--no-mdns", *extra)
    ready = node.wait_for("ready", timeout=20)
    return node, ready["addrs"][0]


def chat(bootstrap: str | list[str], *extra: str, env: dict[str, str] | None = None) -> Strangers:
    boots = [bootstrap] if isinstance(bootstrap, str) else bootstrap
    args = ["chat", "--json", "--listen", LOOPBACK, "--no-mdns"]
    for addr in boots:
        args += ["--bootstrap", addr]
    return Strangers(*args, *extra, env=env)


def run_cli(*args: str, timeout: float = 20.0, input: bytes | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*strangers_command(), *args], capture_output=True, timeout=timeout,
                          input=input, env=env)
