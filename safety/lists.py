"""Trust evaluation for shared blocklists (pure): only lists the user chose count.

A node subscribes to curators' lists by their public keys (``--trust-list KEY``,
or the config file).  :class:`TrustedLists` holds the newest verified version
of each subscribed list and answers the matching gate's one question,
:meth:`TrustedLists.refuses`.  A version of a list nobody subscribed to is
ignored; an older (or the same) version never replaces a newer one, so a
replayed stale record cannot take anybody off a list.  Records are verified
before they get here (``strangers.discovery.listrecord``, by the node).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ListState", "TrustedLists"]


@dataclass(frozen=True)
class ListState:
    """The version of one list in force."""

    version: int
    name: str
    peers: frozenset[str]


class TrustedLists:
    """The lists one user trusts, by curator key (raw 32 bytes)."""

    def __init__(self, curators: Iterable[bytes] = ()) -> None:
        self._curators: tuple[bytes, ...] = tuple(dict.fromkeys(curators))
        self._lists: dict[bytes, ListState] = {}

    @property
    def curators(self) -> tuple[bytes, ...]:
        """The subscribed curator keys, in the order given."""
        return self._curators

    def state(self, curator: bytes) -> ListState | None:
        """The version in force of ``curator``'s list (None: none known yet)."""
        return self._lists.get(curator)

    def offer(self, curator: bytes, version: int, name: str, peers: Iterable[str]) -> bool:
        """Take a verified version of a list; True when it is now the one in force.

        Refused (False): a list not subscribed to, or a version not newer than
        the one in force.
        """
        if curator not in self._curators:
            return False
        current = self._lists.get(curator)
        if current is not None and version <= current.version:
            return False
        self._lists[curator] = ListState(version, name, frozenset(peers))
        return True

    def refuses(self, peer_id: str) -> str | None:
        """Why ``peer_id`` (base58) must not be matched, or None (the gate's question)."""
        for curator in self._curators:
            state = self._lists.get(curator)
            if state is not None and peer_id in state.peers:
                return f"on the trusted list {state.name!r} ({curator.hex()[:8]}...)"
        return None

    def __len__(self) -> int:
        """How many peers the lists in force name together."""
        return len(frozenset().union(*(state.peers for state in self._lists.values())))
