"""Blocks, and the one gate matching asks before any other work (pure).

A block is per peer id: ``/block`` ends the chat and adds the stranger here;
the node refuses that peer as a proposer and never proposes to it
(:meth:`RefusalGate.refuses`). The list is kept in the data directory
(``blocks.json``) as::

    {"version": 1, "blocks": [{"peer_id": "12D3Koo...", "since": 1764500000.0,
                               "interests": ["cinema"]}, ...]}

and holds at most :data:`MAX_BLOCKS` entries (the oldest go first). A block
means something because identities have a price (``crypto/pow.py``): a
blocked stranger who comes back with a fresh identity pays for it again.

:class:`RefusalGate` is the single question matching asks: "do we refuse
this peer, and why?". The block list is one of its sources; trusted shared
lists (issue 10 item 4) plug in as more sources with :meth:`RefusalGate.add`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from strangers.errors import ConfigError

MAX_BLOCKS = 10_000
"""Blocks kept (a file of ~1.5 MB); the oldest are forgotten first."""
MAX_PEER_ID_CHARS = 128
BLOCKS_FILE = "blocks.json"
FILE_VERSION = 1
_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


def check_peer_id(text: object) -> str:
    """A peer id as the user types it (base58); ConfigError if it cannot be one."""
    if (not isinstance(text, str) or not 2 <= len(text) <= MAX_PEER_ID_CHARS
            or not set(text) <= _BASE58):
        raise ConfigError(f"not a peer id: {text!r:.140}")
    return text


@dataclass(frozen=True)
class Block:
    """One blocked stranger."""

    peer_id: str
    since: float
    """Unix time of the block."""
    interests: tuple[str, ...] = ()
    """The interests we had in common when we blocked them (if any)."""


class BlockList:
    """The peers this user blocked, oldest first, bounded."""

    def __init__(self, blocks: Iterable[Block] = (), *, limit: int = MAX_BLOCKS) -> None:
        self.limit = limit
        self._blocks: dict[str, Block] = {}
        for block in blocks:
            self._put(block)

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._blocks

    def entries(self) -> list[Block]:
        """Every block, oldest first."""
        return list(self._blocks.values())

    def _put(self, block: Block) -> None:
        self._blocks.pop(block.peer_id, None)
        self._blocks[block.peer_id] = block
        while len(self._blocks) > self.limit:
            del self._blocks[next(iter(self._blocks))]

    def block(self, peer_id: str, now: float, interests: tuple[str, ...] = ()) -> Block:
        """Block ``peer_id`` from ``now`` on (again: refreshes the entry)."""
        entry = Block(check_peer_id(peer_id), float(now), tuple(interests))
        self._put(entry)
        return entry

    def unblock(self, peer_id: str) -> bool:
        """Forget the block of ``peer_id``; whether there was one."""
        return self._blocks.pop(peer_id, None) is not None

    def refuses(self, peer_id: str) -> str | None:
        return "blocked" if peer_id in self._blocks else None

    # -- the file ----------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {"version": FILE_VERSION, "blocks": [
            {"peer_id": b.peer_id, "since": b.since, "interests": list(b.interests)}
            for b in self._blocks.values()]}

    @classmethod
    def from_json(cls, document: object, *, limit: int = MAX_BLOCKS) -> BlockList:
        """The list in ``document``; entries that are not well-formed are skipped."""
        blocks: list[Block] = []
        items = document.get("blocks") if isinstance(document, dict) else None
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            since = item.get("since")
            interests = item.get("interests", [])
            try:
                peer_id = check_peer_id(item.get("peer_id"))
            except ConfigError:
                continue
            if not isinstance(since, (int, float)) or isinstance(since, bool):
                continue
            if not isinstance(interests, list) or not all(isinstance(i, str) for i in interests):
                interests = []
            blocks.append(Block(peer_id, float(since), tuple(i[:64] for i in interests[:16])))
        return cls(blocks[-limit:], limit=limit)


Source = Callable[[str], "str | None"]
"""Answers "why do we refuse this peer?" (a short reason), or None."""


class RefusalGate:
    """The one question matching asks about a peer, before any other work.

    Sources are asked in the order they were added; the first reason wins.
    """

    def __init__(self, *sources: Source) -> None:
        self._sources: list[Source] = list(sources)

    def add(self, source: Source) -> None:
        """Refuse also the peers ``source`` names (a trusted shared list, say)."""
        self._sources.append(source)

    def refuses(self, peer_id: str) -> str | None:
        """Why we refuse ``peer_id`` (base58), or None to go on."""
        for source in self._sources:
            reason = source(peer_id)
            if reason is not None:
                return reason
        return None
