"""The terminal UI, end to end: the real ``strangers`` executable in tmux, chatting with a
``--json`` stranger, over a private DHT of one ``strangers serve`` node on 127.0.0.1.

We read the screen with ``tmux capture-pane`` and drive the keyboard with ``tmux send-keys``.
Never the default bootstrap list, never mDNS: no test traffic leaves this machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strangers.testing import LOOPBACK, Strangers, chat, serve, strangers_command

TMUX = shutil.which("tmux")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install -y tmux)"),
]

MATCH_TIMEOUT = 30.0
STEP_TIMEOUT = 10.0
UTF8 = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


class TmuxPane:
    """One program in a detached tmux session on a private server socket.

    The program runs under ``sh``, which prints its exit status when it ends: tmux's own
    ``#{pane_dead_status}`` is not reliable (tmux built with utempter can miss the SIGCHLD,
    tmux/tmux#311 and #4559), and this is also what a person sees in a real terminal.
    """

    EXIT_STATUS = re.compile(r"\[strangers exited with status (\d+)\]")

    def __init__(self, command: list[str], workdir: Path, width: int = 110, height: int = 30) -> None:
        self._socket = str(workdir / "tmux.sock")
        config = workdir / "tmux.conf"
        config.write_text("set -g remain-on-exit on\nset -g history-limit 10000\n")
        self._env = {**os.environ, **UTF8, "TERM": os.environ.get("TERM") or "xterm-256color"}
        wrapper = ["sh", "-c", '"$@"; echo "[strangers exited with status $?]"', "sh", *command]
        self._tmux(
            "-f", str(config), "new-session", "-d", "-s", "ui", "-x", str(width), "-y", str(height),
            *(arg for key, value in UTF8.items() for arg in ("-e", f"{key}={value}")),
            *wrapper,
        )
        self._shell = int(self._tmux("display-message", "-p", "-t", "ui", "#{pane_pid}"))

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-u", "-S", self._socket, *args], env=self._env,
                              capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if done.returncode != 0:
            raise AssertionError(f"tmux {shlex.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def screen(self) -> str:
        """Everything the pane showed, scrollback included, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "ui")

    def visible(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "ui")

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "ui", "-l", text)

    def press(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "ui", *keys)

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout}s; the screen:\n{self.visible()}")
            time.sleep(0.05)

    def wait_for(self, text: str, timeout: float = STEP_TIMEOUT) -> None:
        self.wait_until(f"{text!r} on screen", lambda: text in self.screen(), timeout)

    def wait_exit(self, timeout: float = STEP_TIMEOUT) -> int:
        """The program's exit status, once it ended."""
        self.wait_until("the program exits", lambda: self.EXIT_STATUS.search(self.screen()) is not None,
                        timeout)
        found = self.EXIT_STATUS.search(self.screen())
        assert found is not None
        return int(found.group(1))

    def close(self) -> None:
        children = _children(self._shell)
        try:
            self._tmux("kill-server")  # SIGHUP to whatever still runs in the pane
        except AssertionError:
            pass  # already gone
        for pid in children:
            deadline = time.monotonic() + 5
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def workdir() -> Iterator[Path]:
    # short: a unix socket path must fit in ~100 bytes
    with tempfile.TemporaryDirectory(prefix="strangers-tui-") as path:
        yield Path(path)


@pytest.fixture
def bootstrap(procs: list[Strangers]) -> str:
    """A private one-node DHT; its address."""
    node, addr = serve()
    procs.append(node)
    return addr


@pytest.fixture
def stranger(procs: list[Strangers], bootstrap: str) -> Strangers:
    """The other side of the chat, driven through ``--json``."""
    peer = chat(bootstrap, "-i", "cinema")
    procs.append(peer)
    return peer


@pytest.fixture
def pane(workdir: Path, bootstrap: str, stranger: Strangers) -> Iterator[TmuxPane]:
    ui = TmuxPane([*strangers_command(), "chat", "-i", "cinema", "--listen", LOOPBACK,
                   "--bootstrap", bootstrap, "--no-mdns"], workdir)
    try:
        yield ui
    finally:
        ui.close()


def _event(name: str, **fields) -> Callable[[dict], bool]:
    return lambda event: event.get("event") == name and all(event.get(k) == v for k, v in fields.items())


def _matched(pane: TmuxPane, stranger: Strangers) -> None:
    pane.wait_for("You both like cinema", timeout=MATCH_TIMEOUT)
    code = stranger.wait_for(_event("matched", common_interests=["cinema"]), MATCH_TIMEOUT)["safety_code"]
    pane.wait_for(f"Safety code: {code}")
    pane.wait_for(f"Chatting with a stranger · you both like cinema · safety code {code}")


def test_a_chat_in_the_terminal(pane: TmuxPane, stranger: Strangers) -> None:
    _matched(pane, stranger)

    pane.type("hi there")
    stranger.wait_for(_event("typing", active=True), STEP_TIMEOUT)
    pane.press("Enter")
    stranger.wait_for(_event("message", text="hi there"), STEP_TIMEOUT)
    stranger.wait_for(_event("typing", active=False), STEP_TIMEOUT)  # a sent line is not being typed
    pane.wait_for("You: hi there")

    stranger.send({"cmd": "typing", "active": True})
    pane.wait_for("Stranger is typing...")
    stranger.send({"cmd": "send", "text": "hello tui"})
    pane.wait_for("Stranger: hello tui")
    pane.wait_until("the typing notice is gone", lambda: "Stranger is typing..." not in pane.visible())

    pane.type("/help")
    pane.press("Enter")
    pane.wait_for("/next   leave this stranger")
    pane.wait_for("Esc Esc      leave this stranger")
    assert "You: /help" not in pane.screen()

    stranger.send({"cmd": "quit"})
    pane.wait_for("Stranger has disconnected.")
    assert stranger.wait_exit() == 0
    pane.wait_for("Stranger has disconnected. Looking for the next one...")

    pane.type("/quit")
    pane.press("Enter")
    assert pane.wait_exit() == 0


def test_ctrl_d_says_bye(pane: TmuxPane, stranger: Strangers) -> None:
    _matched(pane, stranger)
    pane.type("x")
    stranger.wait_for(_event("typing", active=True), STEP_TIMEOUT)
    pane.press("BSpace")  # an emptied line is no longer being typed
    stranger.wait_for(_event("typing", active=False), STEP_TIMEOUT)

    pane.press("C-d")
    stranger.wait_for(_event("stranger_left", reason="quit"), STEP_TIMEOUT)
    assert pane.wait_exit() == 0
    assert "You have disconnected." in pane.screen()


def test_escape_twice_is_next_and_ctrl_c_quits(pane: TmuxPane, stranger: Strangers) -> None:
    _matched(pane, stranger)
    pane.press("Escape", "Escape")
    stranger.wait_for(_event("stranger_left", reason="next"), STEP_TIMEOUT)
    pane.wait_for("Looking for the next one...")

    pane.press("C-c")
    assert pane.wait_exit() == 130  # interrupted, like any Ctrl-C


INJECTED_FAILURE = '''
import strangers.node

def _broken_statistics(self):
    raise RuntimeError("injected by the test")

strangers.node.Node.statistics = _broken_statistics
'''


def test_an_unexpected_failure_restores_the_terminal_and_says_one_line(workdir: Path, bootstrap: str) -> None:
    """The last-resort handler in the terminal UI: a bug (injected with a sitecustomize module)
    ends the program with one ``strangers: error:`` line and exit 1, no traceback, no SIGABRT
    ("could not acquire lock for <stdin>"), and the terminal back in its normal mode."""
    (workdir / "sitecustomize.py").write_text(INJECTED_FAILURE)
    program = shlex.join([*strangers_command(), "chat", "-i", "bugs", "--listen", LOOPBACK,
                          "--bootstrap", bootstrap, "--no-mdns"])
    script = (f"PYTHONPATH={shlex.quote(str(workdir))} {program}; status=$?; "
              "echo \"[terminal: $(stty -a | grep -o -w -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' ')]\"; "
              "exit $status")
    ui = TmuxPane(["sh", "-c", script], workdir)
    try:
        ui.wait_for("Looking for someone who likes bugs", timeout=MATCH_TIMEOUT)
        ui.type("/status")
        ui.press("Enter")
        assert ui.wait_exit() == 1
        screen = ui.screen()
        assert screen.count("strangers: error: unexpected RuntimeError: injected by the test") == 1, screen
        assert "Traceback" not in screen and "Fatal Python error" not in screen
        assert "[terminal: icanon echo ]" in screen
    finally:
        ui.close()


def test_wrapping_keep_and_save_in_a_narrow_terminal(workdir: Path, bootstrap: str, procs: list[Strangers],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 12 in the terminal: words wrap whole at the pane's edge (in the transcript and in
    the line being typed), /keep agrees with a stranger who offers too, /save writes the log
    (never by itself), /stop leaves and waits."""
    saves = tmp_path / "saved"
    monkeypatch.setenv("STRANGERS_SAVE_DIR", str(saves))
    stranger = chat(bootstrap, "-i", "cinema", env={"STRANGERS_HOME": str(tmp_path / "other")})
    procs.append(stranger)
    ui = TmuxPane([*strangers_command(), "chat", "-i", "cinema", "--listen", LOOPBACK,
                   "--bootstrap", bootstrap, "--no-mdns"], workdir, width=46)
    try:
        ui.wait_for("You both like cinema", timeout=MATCH_TIMEOUT)
        words = [f"word{i:02d}" for i in range(40)]
        stranger.send({"cmd": "send", "text": "lorem " + " ".join(words)})
        ui.wait_for("word39")
        shown = " ".join(ui.visible().split())
        for word in words:  # never cut at the edge: each word whole on one line
            assert f" {word} " in f" {shown} ", (word, ui.visible())
        assert not saves.exists()  # nothing is saved unasked

        ui.type("/keep ana")
        ui.press("Enter")
        ui.wait_for("You offered to keep in touch.")
        stranger.wait_for(_event("keep_asked"), STEP_TIMEOUT)
        stranger.send({"cmd": "keep", "name": "tui friend"})
        ui.wait_for("saved as ana.")
        kept = stranger.wait_for(lambda e: e.get("event") == "kept" and e.get("name") == "tui friend",
                                 STEP_TIMEOUT)

        ui.type("/save")
        ui.press("Enter")
        ui.wait_for("Chat log saved in")
        [log] = list(saves.iterdir())
        text = log.read_text(encoding="utf-8")
        assert "You both like cinema." in text and "Stranger: lorem word00" in text

        # the line being typed wraps at word boundaries too, under the text after "> "
        drafts = [f"draft{i:02d}" for i in range(14)]
        ui.type(" ".join(drafts))
        ui.wait_for("draft13")
        rows = [row for row in ui.visible().splitlines() if "draft" in row]
        assert len(rows) >= 2 and rows[0].startswith("> ") and all(row.startswith("  ") for row in rows[1:])
        assert " ".join(" ".join(rows).split()) == "> " + " ".join(drafts), ui.visible()
        ui.press("C-u")  # the draft is discarded
        ui.wait_until("the draft is gone", lambda: "draft" not in ui.visible())

        # /stop: Omegle's Stop, as the page's button; nobody is looked for until /next
        ui.type("/stop")
        ui.press("Enter")
        stranger.wait_for(_event("stranger_left", reason="next"), STEP_TIMEOUT)
        ui.wait_for("You have disconnected.")
        ui.wait_for("Stopped. Esc Esc or /next looks again")
        ui.press("Escape", "Escape")  # looks again: the status bar says so
        ui.wait_until("the status bar looks again", lambda: "Stopped." not in ui.visible()
                      and "Looking for the next" in ui.visible())

        ui.type("/quit")
        ui.press("Enter")
        assert ui.wait_exit() == 0
        listed = subprocess.run([*strangers_command(), "contacts", "--json"], capture_output=True,
                                text=True, timeout=STEP_TIMEOUT, env={**os.environ})
        [contact] = [line for line in listed.stdout.splitlines() if line.strip()]
        assert '"name": "ana"' in contact and kept["peer_id"] not in contact  # each has the other's id
    finally:
        ui.close()
