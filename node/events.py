"""What a node tells its user interface: events, as frozen dataclasses (nouns).

The node never prints; ``strangers.cli`` renders these (as text for people,
as JSON lines for programs).  Field names are the ``--json`` field names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ready:
    """The node listens and has joined the DHT (or tried to)."""

    peer_id: str
    addrs: tuple[str, ...]
    persistent: bool = False
    """The identity comes from --identity (the same every run)."""


@dataclass(frozen=True)
class Searching:
    """Looking for a stranger; ``random`` once strangers without common interests are welcome."""

    interests: tuple[str, ...]
    random: bool = False
    lang: str = ""
    """The language lane searched first (ISO 639-1), "" for none."""


@dataclass(frozen=True)
class Advertised:
    """Our interests are stored on the DHT: others can find us now."""

    interests: tuple[str, ...]
    peers: int
    """How many DHT nodes confirmed they hold our records."""


@dataclass(frozen=True)
class Matched:
    """A chat started, end-to-end encrypted."""

    peer_id: str
    common_interests: tuple[str, ...]
    safety_code: str
    initiator: bool
    path: str = "direct"
    """How the chat's bytes travel: "direct" (a connection between the two
    of us) or "relayed" (through a circuit relay, which sees only ciphertext)."""
    lang: str = ""
    """The stranger's language (ISO 639-1, as its proposal or acceptance said), "" if untold."""
    contact: str = ""
    """The kept contact met again (``strangers contact NAME``), "" for a stranger."""
    question: str = ""
    """Question mode: someone asked this and watches; we discuss it with another stranger."""


@dataclass(frozen=True)
class PathChanged:
    """The chat moved to another path ("direct" after a hole punch, or "relayed")."""

    path: str


@dataclass(frozen=True)
class MessageReceived:
    """The stranger said something."""

    id: int
    text: str
    hidden: bool = False
    """It matches the user's word list: show a notice instead, the text on request."""
    warnings: tuple[str, ...] = ()
    """"link", "email", "phone", "handle": what to warn about before the text is read."""


@dataclass(frozen=True)
class Sent:
    """Our message left (encrypted) towards the stranger."""

    id: int
    text: str


@dataclass(frozen=True)
class Delivered:
    """The stranger's node decrypted our message ``id``."""

    id: int


@dataclass(frozen=True)
class Typing:
    """The stranger started or stopped typing."""

    active: bool


@dataclass(frozen=True)
class StrangerLeft:
    """The chat is over: ``reason`` is "quit", "next", "disconnected", "timeout" or "error"."""

    reason: str
    by_us: bool = False


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the event is called "warning" on the wire
    """Something the user should know that does not stop the node."""

    message: str


@dataclass(frozen=True)
class Error:
    """Something failed (a bad command, a message that could not be sent...)."""

    message: str


@dataclass(frozen=True)
class Stopped:
    """The node shut down."""


@dataclass(frozen=True)
class Idle:
    """Stop while searching (or asking): nobody is looked for until ``next``."""


@dataclass(frozen=True)
class Reachability:
    """Whether strangers can dial us directly, and the addresses we announce.

    ``reachable`` False: we are behind a NAT (AutoNAT, or ``--behind-nat`` /
    ``--hide-ip``); ``addrs`` then gains relayed addresses
    (``.../p2p/RELAY/p2p-circuit``) as relays grant us slots.
    """

    reachable: bool
    addrs: tuple[str, ...]
    relays: int = 0
    """How many relays hold a reservation for us."""


@dataclass(frozen=True)
class Revealed:
    """The user asked to see the last message the word filter hid: here it is."""

    id: int
    text: str


@dataclass(frozen=True)
class LobbyJoined:
    """We joined a lobby (a public GossipSub topic); ``peers``: members we are connected to."""

    topic: str
    peers: int


@dataclass(frozen=True)
class LobbyMessage:
    """Someone in the lobby said something (public, signed by ``from_``'s peer key)."""

    id: str
    from_: str
    """The sender's peer id (``from`` in JSON)."""
    nick: str
    text: str


@dataclass(frozen=True)
class Reported:
    """A report of the stranger's texts, with proof, was saved in ``path`` (a local file)."""

    path: str


@dataclass(frozen=True)
class LobbySent:
    """Our lobby message left (signed, readable by everyone in the lobby)."""

    id: str
    text: str


@dataclass(frozen=True)
class LobbyMembers:
    """How many people are in the lobby (an estimate, ourselves included)."""

    count: int


@dataclass(frozen=True)
class LobbyCounts:
    """While searching: how many people are in the lobbies of our interests (estimates)."""

    counts: tuple[tuple[str, int], ...]
    """(interest, members) pairs, in the order of our interests."""


@dataclass(frozen=True)
class ChatInvited:
    """A lobby member invites us to a private chat: answer with accept or decline (a minute)."""

    peer_id: str
    nick: str


@dataclass(frozen=True)
class Blocked:
    """We blocked the stranger: this node never matches ``peer_id`` again (until unblocked)."""

    peer_id: str
    common_interests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Saved:
    """The conversation's log was written to ``path`` (only ever on request)."""

    path: str


@dataclass(frozen=True)
class Language:
    """The user's language lane is now ``lang`` ("" for none); the next search uses it."""

    lang: str


@dataclass(frozen=True)
class KeepOffered:
    """We offered to keep in touch; nothing is exchanged unless the stranger offers too."""


@dataclass(frozen=True)
class KeepAsked:
    """The stranger offers to keep in touch (``/keep`` to agree; ignoring it reveals nothing)."""


@dataclass(frozen=True)
class Kept:
    """Both agreed: the contact is saved as ``name`` (``strangers contact NAME`` finds it again)."""

    name: str
    peer_id: str
    """The contact's long-term peer id (not the one of this chat)."""


@dataclass(frozen=True)
class QuestionJoined:
    """Question mode, the watcher's side: Stranger ``stranger`` (1 or 2) is here."""

    stranger: int
    peer_id: str
    common_interests: tuple[str, ...]
    safety_code: str
    """The safety code of the watcher's own chat with this stranger."""
    lang: str = ""


@dataclass(frozen=True)
class QuestionMessage:
    """Question mode: Stranger ``stranger`` said ``text`` (relayed to the other one)."""

    stranger: int
    text: str


@dataclass(frozen=True)
class QuestionTyping:
    """Question mode: Stranger ``stranger`` started or stopped typing."""

    stranger: int
    active: bool


@dataclass(frozen=True)
class QuestionLeft:
    """Question mode: Stranger ``stranger`` left (``reason`` as in ``stranger_left``)."""

    stranger: int
    reason: str
    by_us: bool = False
    """The watcher ended this chat (the other stranger left, or next/quit)."""


Event = (
    Ready | Searching | Advertised | Matched | PathChanged | MessageReceived | Sent | Delivered
    | Typing | StrangerLeft | Warning | Error | Stopped | Idle | Reachability | Reported | Revealed
    | LobbyJoined | LobbyMessage | LobbySent | LobbyMembers | LobbyCounts | ChatInvited | Blocked
    | Saved | Language | KeepOffered | KeepAsked | Kept
    | QuestionJoined | QuestionMessage | QuestionTyping | QuestionLeft
)
