"""The node behind the page: started by the page's Start, fed the page's commands.

The page speaks the ``--json`` protocol (docs/protocol.md §7) over its
WebSocket: every event of the node goes to the page as the object
``event_to_json`` makes of it, and every text the page sends is a command line
for ``commands.parse_command`` and ``actions.apply``, exactly as on stdin.
Two commands and three events belong to the page alone (§7.4), because the page
chooses its interests before the node looks for anyone:

* ``{"cmd": "start", "interests": [...], "lang": "fr", "questions": false}``:
  Start / New. The first one opens the node with those interests; later ones
  look for the next stranger, and reopen the node first when the interests or
  ``questions`` changed (a node's interests are fixed: they are what it
  announces on the DHT). ``lang`` (optional, ISO 639-1, ``""`` for none) is
  the language lane, changed on a running node as ``{"cmd": "lang"}`` does;
  ``questions`` (optional) is ``--questions``. With ``"question": "..."`` the
  page asks it (``strangers ask``): the node watches two strangers discuss it
  (the ``question_*`` events) and the page cannot type.
* ``{"cmd": "stop"}``: Stop. In a chat it leaves, like ``next``, but the node
  does not look for another stranger (``auto_next`` is off for the page);
  while searching it stops searching.
* ``hello`` (first event on every WebSocket: the interests from the command
  line, whether a node runs, which optional commands this version knows),
  ``starting`` (Start was pressed: the node is joining the network),
  ``idle`` (nothing is going on: Stop while searching, or the node stopped).

A page that connects later (a reload, a second tab) first gets ``hello``, then
the events since the last Start again (bounded), so it shows what the one
before it showed.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from strangers import __version__
from strangers.errors import StrangersError
from strangers.node import Node, NodeConfig, open_node

from .. import commands
from ..actions import StatusReply, apply
from ..format import event_to_json, status_to_json

BACKLOG = 1000
"""Events kept for a page that connects later (the last Start's, at most this many)."""
OPTIONAL_COMMANDS = ("report", "reveal", "block", "save", "keep")
"""Commands that get a button when this version of ``parse_command`` knows them."""
MAX_INTERESTS = 32
MAX_QUESTION = 4096
"""A bound on the page's question before the node checks it (its own limit is smaller, §8)."""
CHAT_END_WAIT = 3.0
"""How long New waits for a chat that is ending (its Bye takes at most 2 s, §6.6)."""
CHAT_END_POLL = 0.02

Publish = Callable[[dict[str, Any]], None]


class StartCommandError(commands.CommandError):
    """A ``start`` command the page got wrong."""


@dataclasses.dataclass(frozen=True)
class Start:
    interests: tuple[str, ...]
    lang: str | None = None
    """None: the language the node has (from ``--lang`` or the locale)."""
    questions: bool | None = None
    """None: as the node has it (``--questions``)."""
    question: str = ""
    """Not empty: ask this question and watch two strangers discuss it (``strangers ask``)."""


@dataclasses.dataclass(frozen=True)
class Stop:
    pass


def parse_page_command(line: str | bytes) -> Start | Stop | commands.Command:
    """One command from the page: ``start``, ``stop``, or any ``--json`` command."""
    if len(line) > commands.MAX_COMMAND_LINE:
        raise commands.CommandError(f"command too long ({len(line)} bytes, at most {commands.MAX_COMMAND_LINE})")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        obj = None  # parse_command says what is wrong
    if isinstance(obj, dict) and obj.get("cmd") == "stop":
        return Stop()
    if isinstance(obj, dict) and obj.get("cmd") == "start":
        interests = obj.get("interests", [])
        if (not isinstance(interests, list) or len(interests) > MAX_INTERESTS
                or not all(isinstance(item, str) for item in interests)):
            raise StartCommandError(f"start needs \"interests\": a list of at most {MAX_INTERESTS}"
                                    f" strings, got {interests!r:.80}")
        lang = obj.get("lang")
        if lang is not None and (not isinstance(lang, str) or len(lang) > 16):
            raise StartCommandError(f"start takes a \"lang\" code like \"fr\" (\"\" for none), got {lang!r:.80}")
        questions = obj.get("questions")
        if questions is not None and not isinstance(questions, bool):
            raise StartCommandError(f"start takes \"questions\": true or false, got {questions!r:.80}")
        question = obj.get("question", "")
        if not isinstance(question, str) or len(question) > MAX_QUESTION:
            raise StartCommandError(f"start takes a \"question\" of at most {MAX_QUESTION} characters,"
                                    f" got {question!r:.80}")
        return Start(tuple(item for item in interests if item.strip()), lang, questions, question.strip())
    return commands.parse_command(line)


def known_commands() -> list[str]:
    """The optional commands this version carries out (the page shows their buttons)."""
    known = []
    for name in OPTIONAL_COMMANDS:
        try:
            commands.parse_command(json.dumps({"cmd": name}))
        except commands.CommandError as exc:
            if str(exc).startswith("unknown command"):
                continue
        known.append(name)
    return known


class WebSession:
    """At most one node, opened by the page's Start; its events go to every page."""

    def __init__(self, config: NodeConfig, nursery: trio.Nursery) -> None:
        self.config = dataclasses.replace(config, auto_next=False)
        """Omegle's habit: when a chat ends, the page waits for New."""
        self.node: Node | None = None
        self._nursery = nursery
        self._node_done: trio.Event | None = None
        self._starting = False
        self._stop_when_ready = False
        """Stop was pressed while the node was still joining the network."""
        self._backlog: deque[dict[str, Any]] = deque(maxlen=BACKLOG)
        self._pages: list[Publish] = []
        self._lock = trio.Lock()  # one start/stop at a time

    # -- pages -------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return {"event": "hello", "version": __version__, "interests": list(self.config.interests),
                "running": self.node is not None, "commands": known_commands(),
                "lang": self.config.lang, "questions": self.config.questions,
                "question": self.config.question}

    def attach(self, publish: Publish) -> list[dict[str, Any]]:
        """A page connected: what to send it first (``hello``, then the backlog)."""
        self._pages.append(publish)
        return [self.hello(), *self._backlog]

    def detach(self, publish: Publish) -> None:
        if publish in self._pages:
            self._pages.remove(publish)

    def publish(self, obj: dict[str, Any]) -> None:
        self._backlog.append(obj)
        for page in list(self._pages):
            page(obj)

    # -- commands ------------------------------------------------------------------

    async def handle(self, line: str | bytes, reply: Publish | None = None) -> None:
        """One command line from a page; what goes wrong becomes an ``error`` event.

        A line that is not a command is answered to the page that sent it
        (``reply``) only; what the node says goes to every page.
        """
        try:
            command = parse_page_command(line)
        except commands.CommandError as exc:
            (reply or self.publish)({"event": "error", "message": str(exc)})
            return
        try:
            if isinstance(command, Start):
                await self.start(command.interests, command.lang, command.questions, command.question)
            elif isinstance(command, Stop):
                await self.stop()
            elif self.node is None:
                (reply or self.publish)({"event": "error", "message": "press Start first: strangers is not"
                                                                     " looking for anyone yet"})
            else:
                answer = await apply(self.node, command)
                if isinstance(command, commands.SetLang) and self.node is not None:
                    self.config = dataclasses.replace(self.config, lang=self.node.lang)  # the next Start's
                if isinstance(answer, StatusReply):
                    (reply or self.publish)(status_to_json(answer.peer_id, answer.statistics))
        except StrangersError as exc:
            self.publish({"event": "error", "message": str(exc)})

    async def start(self, interests: tuple[str, ...], lang: str | None = None,
                    questions: bool | None = None, question: str = "") -> None:
        """Start / New: look for a stranger with ``interests``, in the language lane ``lang``."""
        async with self._lock:
            config = dataclasses.replace(  # ConfigError (a bad language code): shown
                self.config, interests=interests,
                lang=self.config.lang if lang is None else lang,
                questions=self.config.questions if questions is None else questions,
                question=question)  # ConfigError (an empty or too long question): shown
            if (self.node is not None and self.node.config.interests == config.interests
                    and self.node.config.questions == config.questions
                    and self.node.config.question == config.question):
                self._backlog.clear()
                if config.lang != self.config.lang:
                    self.config = dataclasses.replace(self.config, lang=config.lang)
                    await self.node.set_lang(config.lang)  # a `language` event
                # a chat that just ended may still be saying goodbye: New waits for it (briefly)
                with trio.move_on_after(CHAT_END_WAIT):
                    while self.node is not None and self.node.statistics().state == "matched":
                        await trio.sleep(CHAT_END_POLL)
                if self.node is not None and self.node.statistics().state == "idle":
                    await self.node.next()  # idle: search again
                return
            if self._starting:
                return
            await self._close_node()
            self._backlog.clear()
            self.config = config
            self._starting = True
            self._stop_when_ready = False
            self.publish({"event": "starting", "interests": list(config.interests)})
            done = self._node_done = trio.Event()
            self._nursery.start_soon(self._run_node, config, done)

    async def stop(self) -> None:
        """Stop: leave the stranger, or stop looking; the node stays up for New."""
        node = self.node
        if node is None:
            self._stop_when_ready = self._starting
            return
        stopped = await node.stop()  # a chat's end says so itself (stranger_left, question_left)
        if stopped in ("search", "question"):
            self.publish({"event": "idle"})

    async def close(self) -> None:
        async with self._lock:
            await self._close_node()

    async def _close_node(self) -> None:
        if self.node is not None and self._node_done is not None:
            await self.node.quit()
            await self._node_done.wait()

    async def _run_node(self, config: NodeConfig, done: trio.Event) -> None:
        try:
            async with open_node(config) as node:
                self.node = node
                self._starting = False
                if self._stop_when_ready:
                    self._stop_when_ready = False
                    await self.stop()
                async for event in node.events():
                    self.publish(event_to_json(event))
        except StrangersError as exc:  # a startup error: bad listen address, port in use...
            self.publish({"event": "error", "message": str(exc)})
        finally:
            self.node = None
            self._starting = False
            done.set()
            self.publish({"event": "idle"})
