"""The terminal UI of ``strangers chat``: Omegle in a terminal.

Two threads, each with one owner:

* trio (the main thread) runs the node, the signal watcher and the typing timer;
* a worker thread, owned by a trio task, runs prompt_toolkit on its own asyncio
  loop: the input line, the status toolbar under it, and the lines printed
  above it.

They meet only at thread-safe doors.  The prompt thread hands what the person
does (:class:`_Line`, :class:`_Edited`, :class:`_Next`, :class:`_Quit`) to trio
through a bounded memory channel (``trio.from_thread.run_sync(send_nowait)``);
trio hands lines to print, status changes and "exit now" to the prompt thread
with ``loop.call_soon_threadsafe``.  When the node stops, trio makes the prompt
exit and waits (briefly) for its thread, so the process ends promptly and the
terminal is left as it was found.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import shutil
import signal
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio
from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app, run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import Condition, has_focus, is_searching
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import get_cwidth

from strangers.errors import StrangersError
from strangers.node import Node, NodeConfig, events, open_node

from .actions import StatusReply, apply
from .commands import CommandError, Help, Quit, parse_user_line
from .display import (
    KEYS,
    STYLE,
    ChatStatus,
    Phase,
    StatusLine,
    styled_event,
    system_line,
    toolbar_fragments,
)
from .format import HELP, format_status
from .input_wrap import WordWrap
from .typing_state import TypingState, is_draft

logger = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
STOP_LINE = "/stop"
"""Omegle's Stop, as on the page: leave (or stop looking) and wait for /next (this UI's own line)."""
INPUT_QUEUE = 256
"""What the person did and trio has not handled yet (lines, keystrokes)."""
PROMPT_EXIT_TIMEOUT = 2.0
"""How long to wait for the prompt thread to give the terminal back."""

class TerminalUIError(StrangersError):
    """The terminal UI stopped working."""


# -- what the person did (prompt thread -> trio) ------------------------------------


@dataclass(frozen=True)
class _Line:
    """Enter on a line: a message or a /command."""

    text: str


@dataclass(frozen=True)
class _Edited:
    """The input line changed; ``drafting``: it now holds a message being written."""

    drafting: bool


@dataclass(frozen=True)
class _Next:
    """Esc Esc: the next stranger, please."""


@dataclass(frozen=True)
class _Quit:
    """Ctrl-C (``interrupted``) or Ctrl-D, or the terminal went away."""

    interrupted: bool


_Input = _Line | _Edited | _Next | _Quit


# -- the prompt thread -----------------------------------------------------------------


class _Prompt:
    """prompt_toolkit in a worker thread with its own asyncio loop.

    Methods without a leading underscore are called from trio; the rest run in
    the prompt thread.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, inputs: trio.MemorySendChannel[_Input],
                 status: StatusLine) -> None:
        self._token = token
        self._inputs = inputs
        self._status = status
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: PromptSession | None = None
        self._pending: list[FormattedText] = []
        self._closed = False
        self._stop_requested = threading.Event()
        self.finished = trio.Event()
        """Set (in trio) once the prompt thread has given the terminal back."""
        self._was_drafting = False

    # -- from trio ------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def show(self, text: FormattedText) -> None:
        """Print ``text`` above the prompt (before it starts: as soon as it does)."""
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._print, text)
                return
            if not self._closed:
                self._pending.append(text)
                return
        _print_now(text)  # the prompt is gone: the terminal is ours

    def set_status(self, status: StatusLine) -> None:
        self._status = status  # an immutable snapshot: one reference swap
        self._call(self._invalidate)

    def stop(self) -> None:
        """Make the prompt exit (now, or as soon as it starts)."""
        self._stop_requested.set()
        self._call(self._exit)

    def _call(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(callback)

    # -- in the prompt thread -------------------------------------------------------------

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            # Tell trio the terminal is free again (the trio task that started
            # this thread may have been cancelled and abandoned it meanwhile).
            try:
                trio.from_thread.run_sync(self.finished.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass

    async def _main(self) -> None:
        session = prompt_session(self._toolbar, self._key_bindings())
        self._session = session
        session.default_buffer.on_text_changed += self._on_text_changed
        with patch_stdout(), _logs_above_prompt():
            with self._lock:
                for text in self._pending:
                    _print_now(text)
                self._pending.clear()
                self._loop = asyncio.get_running_loop()
            try:
                await session.prompt_async(pre_run=self._started, set_exception_handler=False)
            except EOFError:  # the terminal went away: trio sees the thread end and quits
                pass
            finally:
                with self._lock:
                    self._loop = None
                    self._closed = True
                await asyncio.sleep(0)  # run the callbacks scheduled before _loop was cleared

    def _started(self) -> None:
        if self.stop_requested:
            self._exit()

    def _exit(self) -> None:
        app = self._session.app if self._session is not None else None
        if app is not None and app.future is not None and not app.future.done():
            app.exit()

    def _invalidate(self) -> None:
        if self._session is not None and self._session.app.is_running:
            self._session.app.invalidate()

    def _print(self, text: FormattedText) -> None:
        if self._session is not None and self._session.app.is_running:
            run_in_terminal(lambda: _print_now(text), in_executor=False)
        else:
            _print_now(text)

    def _toolbar(self) -> FormattedText:
        return toolbar_fragments(self._status, get_app().output.get_size().columns)

    def _hand(self, item: _Input) -> bool:
        """Give ``item`` to trio; False when trio cannot take it."""
        try:
            trio.from_thread.run_sync(self._inputs.send_nowait, item, trio_token=self._token)
        except trio.WouldBlock:
            self._print(system_line("! too much at once; try again in a moment"))
            return False
        except (trio.RunFinishedError, trio.ClosedResourceError, trio.BrokenResourceError):
            self._exit()  # nobody is listening any more
            return False
        return True

    def _on_text_changed(self, buffer: Buffer) -> None:
        drafting = is_draft(buffer.text)
        if drafting or self._was_drafting:
            self._hand(_Edited(drafting))
        self._was_drafting = drafting

    def _submit(self, buffer: Buffer) -> None:
        text = buffer.text
        if not text.strip():
            return
        if is_draft(text) and self._status.phase is Phase.WATCHING:
            self._print(system_line("You are watching: only the two strangers talk"
                                    " (/next asks two new strangers, /quit leaves)."))
            return
        if is_draft(text) and not self._status.chatting:
            self._print(system_line("Nobody to talk to yet: your message waits here until a stranger arrives."))
            return
        buffer.append_to_history()
        if self._hand(_Line(text)):
            buffer.reset()

    def _key_bindings(self) -> KeyBindings:
        bindings = KeyBindings()
        typing_here = has_focus(DEFAULT_BUFFER)
        line_empty = Condition(lambda: not get_app().current_buffer.text)

        @bindings.add("enter", filter=typing_here)
        def _enter(event: KeyPressEvent) -> None:
            self._submit(event.current_buffer)

        @bindings.add("c-c", filter=~is_searching)
        def _interrupt(event: KeyPressEvent) -> None:
            self._hand(_Quit(interrupted=True))

        @bindings.add("c-d", filter=typing_here & line_empty)
        def _end(event: KeyPressEvent) -> None:
            self._hand(_Quit(interrupted=False))

        @bindings.add("escape", "escape", filter=~is_searching)
        def _next(event: KeyPressEvent) -> None:
            self._hand(_Next())

        return bindings


PROMPT = "> "


def prompt_session(toolbar: Callable[[], FormattedText], key_bindings: KeyBindings) -> PromptSession[str]:
    """The input line: ``> `` and what is typed, wrapped at word boundaries (rows after
    the first indented under the text), with the status toolbar under it."""
    return PromptSession(
        message=[("class:prompt", PROMPT)],
        prompt_continuation=lambda width, _line, _wrap: " " * width,
        input_processors=[WordWrap(get_cwidth(PROMPT))],
        bottom_toolbar=toolbar,
        style=STYLE,
        include_default_pygments_style=False,
        key_bindings=key_bindings,
        history=InMemoryHistory(),
        reserve_space_for_menu=0,
        erase_when_done=True,
    )


def _print_now(text: FormattedText) -> None:
    try:
        print_formatted_text(text, style=STYLE)
    except OSError as exc:  # the terminal went away (hangup): nobody is left to read it
        logger.debug("not shown: %r", exc)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


@contextmanager
def _logs_above_prompt() -> Iterator[None]:
    """Send the log lines meant for the terminal (``-v``) through the stdout proxy, above the prompt."""
    moved = [(handler, handler.setStream(sys.stderr)) for handler in logging.getLogger().handlers
             if type(handler) is logging.StreamHandler and _is_terminal(handler.stream)]
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _save_terminal() -> list | None:
    try:
        return termios.tcgetattr(sys.stdin.fileno())
    except (termios.error, OSError, ValueError):
        return None


def _restore_terminal(saved: list | None) -> None:
    """Put the terminal back as we found it (prompt_toolkit does too; this is for when it could not)."""
    if saved is None:
        return
    try:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    except (termios.error, OSError, ValueError):
        pass  # the terminal is gone


class _TerminalUI:
    def __init__(self, config: NodeConfig, interrupted: list[bool]) -> None:
        self.config = config
        self.interrupted = interrupted
        self.status = ChatStatus(config.interests, config.question)
        self.typing = TypingState()
        self.node: Node | None = None
        self._node_scope = trio.CancelScope()
        self._quitting = False
        """Leaving: the node was told to quit."""
        self._stopped = False
        """/stop: nobody is looked for until /next (the status bar says so)."""
        self._interrupted = False
        """Ctrl-C (or SIGINT) was pressed once; pressing it again leaves at once."""
        self._failure: BaseException | None = None
        self._saved_terminal = _save_terminal()
        send_inputs, self._inputs = trio.open_memory_channel[_Input](INPUT_QUEUE)
        self.prompt = _Prompt(trio.lowlevel.current_trio_token(), send_inputs, self.status.line())

    async def run(self) -> None:
        node_error: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._run_prompt)
                nursery.start_soon(self._watch_signals)
                nursery.start_soon(self._serve_inputs)
                self._greet()
                try:
                    with self._node_scope:
                        async with open_node(self.config) as node:
                            self.node = node
                            try:
                                await self._show_events(node)
                            finally:
                                self._leave()
                except Exception as exc:  # raised below, outside the nursery, unwrapped
                    node_error = exc
                finally:
                    self.node = None
                    self.prompt.stop()
                    with trio.CancelScope(shield=True), trio.move_on_after(PROMPT_EXIT_TIMEOUT):
                        await self.prompt.finished.wait()  # the thread itself, not its task
                    nursery.cancel_scope.cancel()
        finally:
            _restore_terminal(self._saved_terminal)
        if node_error is not None:
            raise node_error
        if self._failure is not None:
            raise TerminalUIError(f"the terminal UI failed: {self._failure!r}") from self._failure

    def _greet(self) -> None:
        if self.config.question:
            self.prompt.show(system_line(
                f"You asked: {self.config.question} Two strangers who discuss questions will"
                " see it and know you are watching; you cannot type.",
                shutil.get_terminal_size().columns))
        self.prompt.show(system_line("Welcome to strangers! Messages are end-to-end encrypted. "
                                     "/help lists commands.", shutil.get_terminal_size().columns))

    def _leave(self) -> None:
        """The node is stopping: give the terminal back right away."""
        self._say_leaving()
        self.prompt.stop()

    def _say_leaving(self) -> None:
        if self.status.phase is Phase.CHATTING:
            self.prompt.show(FormattedText([("class:left", "You have disconnected.")]))
        if self.status.phase is not Phase.LEAVING:
            self.status.leaving()
            self.prompt.set_status(self._status_line())

    # -- tasks ------------------------------------------------------------------------

    async def _run_prompt(self) -> None:
        try:
            await trio.to_thread.run_sync(self.prompt.run, abandon_on_cancel=True)  # type: ignore[call-arg]
        except Exception as exc:  # prompt_toolkit failed: stop cleanly, then report it
            logger.debug("prompt failed", exc_info=True)
            if not (isinstance(exc, OSError) and exc.errno == errno.EIO):  # EIO: the terminal closed
                self._failure = exc
        if not self.prompt.stop_requested:
            await self._quit(interrupted=False)

    async def _watch_signals(self) -> None:
        """SIGINT, SIGTERM, SIGHUP (the terminal closed): say bye and stop."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                await self._quit(interrupted=signum == signal.SIGINT)

    async def _show_events(self, node: Node) -> None:
        async for event in node.events():
            try:
                self._on_event(event)
            except Exception:  # a bad event must not end the chat
                logger.exception("could not show %r", event)

    def _status_line(self) -> StatusLine:
        line = self.status.line()
        if self._stopped and line.phase is Phase.SEARCHING:
            return StatusLine(line.phase, "Stopped. Esc Esc or /next looks again",
                              line.details, "left")
        return line

    def _on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Matched, events.StrangerLeft)):
            self.typing.forget()  # a new stranger was told nothing yet
        before = self._status_line()
        if isinstance(event, (events.Searching, events.Matched, events.QuestionJoined)):
            self._stopped = False
        self.status.apply(event)
        line = self._status_line()
        if line != before:
            self.prompt.set_status(line)
        text = styled_event(event, shutil.get_terminal_size().columns)
        if text is not None:
            self.prompt.show(text)

    async def _serve_inputs(self) -> None:
        while True:
            deadline = self.typing.deadline()
            item: _Input | None = None
            with trio.move_on_at(math.inf if deadline is None else deadline):
                item = await self._inputs.receive()
            if item is None:
                await self._tell_typing(self.typing.expire(trio.current_time()))
            else:
                await self._handle(item)

    async def _handle(self, item: _Input) -> None:
        match item:
            case _Edited(drafting):
                await self._tell_typing(self.typing.edited(drafting, trio.current_time()))
            case _Line(text):
                stopped = self.typing.submitted()
                await self._handle_line(text)
                await self._tell_typing(stopped)
            case _Next():
                if self.node is not None:
                    await self.node.next()
            case _Quit(interrupted):
                await self._quit(interrupted)

    async def _handle_line(self, text: str) -> None:
        if text.strip().lower() == STOP_LINE:
            await self._stop()
            return
        try:
            command = parse_user_line(text)
        except CommandError as exc:
            self.prompt.show(styled_event(events.Error(str(exc)), shutil.get_terminal_size().columns)
                             or system_line(str(exc)))
            return
        if isinstance(command, Help):
            self.prompt.show(system_line(HELP + "\n" + KEYS,
                                         shutil.get_terminal_size().columns))
            return
        if isinstance(command, Quit):
            await self._quit(interrupted=False)
            return
        node = self.node
        if node is None:
            self.prompt.show(system_line("Still connecting to the network; one moment.",
                                         shutil.get_terminal_size().columns))
            return
        reply = await apply(node, command)
        if isinstance(reply, StatusReply):
            self.prompt.show(system_line(format_status(reply.statistics), shutil.get_terminal_size().columns))

    async def _stop(self) -> None:
        """/stop: Omegle's Stop (``Node.stop``), as the page's Stop button."""
        node = self.node
        if node is None:
            self.prompt.show(system_line("Still connecting to the network; one moment.",
                                         shutil.get_terminal_size().columns))
            return
        self._stopped = True
        stopped = await node.stop()
        if stopped in ("search", "question"):  # a chat's end is told by its stranger_left
            self.prompt.show(FormattedText([("class:left", "You stopped looking.")]))
        self.prompt.set_status(self._status_line())

    async def _tell_typing(self, change: bool | None) -> None:
        if change is not None and self.node is not None:
            await self.node.set_typing(change)

    async def _quit(self, interrupted: bool) -> None:
        """Say bye and stop. A second Ctrl-C leaves at once (not a second SIGHUP or SIGTERM:
        a closed terminal sends SIGHUP from the kernel and from the shell)."""
        if interrupted and self._interrupted:
            await self._force_exit()
        self._interrupted = self._interrupted or interrupted
        if self._quitting:
            return
        self._quitting = True
        self.interrupted.append(interrupted)
        self._say_leaving()
        node = self.node
        if node is None:
            self._node_scope.cancel()
        else:
            self._nursery.start_soon(node.quit)  # keeps inputs flowing: a second Ctrl-C still works

    async def _force_exit(self) -> None:
        """Asked twice: give the terminal back and leave without waiting for anyone."""
        self.prompt.stop()
        with trio.move_on_after(0.5):
            await self.prompt.finished.wait()
        _restore_terminal(self._saved_terminal)
        os._exit(EXIT_INTERRUPTED)


async def run_terminal_ui(config: NodeConfig, interrupted: list[bool]) -> None:
    """Chat in the terminal until the person leaves (or a signal says so)."""
    await _TerminalUI(config, interrupted).run()
