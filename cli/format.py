"""Pure formatting: events to JSON objects and to the lines a person reads.

No I/O here (httpx's CLI style): ``format_*`` return strings or dicts, the
``print_*`` side lives in ``jsonio.py`` and ``interactive.py``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from strangers.node import NodeStatistics, events


def _human_list(items: tuple[str, ...]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def _visible(text: str) -> str:
    """``text`` with control characters (ESC, CR, newline...) shown as escapes,
    and bidirectional controls (overrides, isolates, marks) as U+FFFD.

    A stranger's message must not be able to drive our terminal (escape
    sequences) or fake a line of ours ("\\nStranger has disconnected.").
    """
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) == "Cc"
        else "\ufffd" if char in BIDI_CONTROLS  # could reorder what follows on screen
        else char
        for char in text
    )


HIDDEN_LINE = "Stranger: [a message hidden by your word filter; /reveal shows it]"
_WARNING_NAMES = {"link": "a link", "email": "an e-mail address", "phone": "a phone number",
                  "handle": "an account on another app"}


def format_warnings(warnings: tuple[str, ...]) -> str:
    """The warning shown before a message holding links or contact handles."""
    what = _human_list(tuple(_WARNING_NAMES.get(kind, kind) for kind in warnings))
    return (f"! Careful: the next message holds {what}. Strangers who move you to another"
            " app or site are a classic first step of grooming; you never have to follow.")


RELAYED_LINE = "Through a relay (it passes on only encrypted bytes)."
DIRECT_LINE = "Now connected directly to the stranger."
RELAYED_AGAIN_LINE = "Now connected through a relay (it passes on only encrypted bytes)."


def event_to_json(event: events.Event) -> dict[str, Any]:
    """The ``--json`` object for one event (a public interface: keep field names)."""
    match event:
        case events.Ready(peer_id, addrs, _persistent):
            return {"event": "ready", "peer_id": peer_id, "addrs": list(addrs)}
        case events.Searching(interests, random, lang):
            return {"event": "searching", "interests": list(interests), "random": random,
                    "lang": lang}
        case events.Advertised(interests, peers):
            return {"event": "advertised", "interests": list(interests), "peers": peers}
        case events.Matched(peer_id, common, safety_code, initiator, path, lang, contact, question):
            return {"event": "matched", "peer_id": peer_id, "common_interests": list(common),
                    "safety_code": safety_code, "initiator": initiator, "path": path,
                    "lang": lang, "contact": contact, "question": question}
        case events.PathChanged(path):
            return {"event": "path", "path": path}
        case events.MessageReceived(message_id, text, hidden, warnings):
            return {"event": "message", "id": message_id, "text": text, "hidden": hidden,
                    "warnings": list(warnings)}
        case events.Sent(message_id, text):
            return {"event": "sent", "id": message_id, "text": text}
        case events.Delivered(message_id):
            return {"event": "delivered", "id": message_id}
        case events.Typing(active):
            return {"event": "typing", "active": active}
        case events.StrangerLeft(reason, by_us):
            return {"event": "stranger_left", "reason": reason, "by_us": by_us}
        case events.Warning(message):
            return {"event": "warning", "message": message}
        case events.Error(message):
            return {"event": "error", "message": message}
        case events.Stopped():
            return {"event": "stopped"}
        case events.Idle():
            return {"event": "idle"}
        case events.Reachability(reachable, addrs, relays):
            return {"event": "reachability", "reachable": reachable, "addrs": list(addrs),
                    "relays": relays}
        case events.Reported(path):
            return {"event": "reported", "path": path}
        case events.Revealed(message_id, text):
            return {"event": "revealed", "id": message_id, "text": text}
        case events.LobbyJoined(topic, peers):
            return {"event": "joined", "topic": topic, "peers": peers}
        case events.LobbyMessage(ident, sender, nick, text):
            return {"event": "lobby_message", "id": ident, "from": sender, "nick": nick,
                    "text": text}
        case events.LobbySent(ident, text):
            return {"event": "lobby_sent", "id": ident, "text": text}
        case events.LobbyMembers(count):
            return {"event": "members", "count": count}
        case events.LobbyCounts(counts):
            return {"event": "lobby_counts", "lobbies": dict(counts)}
        case events.ChatInvited(peer_id, nick):
            return {"event": "chat_invited", "peer_id": peer_id, "nick": nick}
        case events.Blocked(peer_id, common):
            return {"event": "blocked", "peer_id": peer_id, "common_interests": list(common)}
        case events.Saved(path):
            return {"event": "saved", "path": path}
        case events.Language(lang):
            return {"event": "language", "lang": lang}
        case events.KeepOffered():
            return {"event": "keep_offered"}
        case events.KeepAsked():
            return {"event": "keep_asked"}
        case events.Kept(name, peer_id):
            return {"event": "kept", "name": name, "peer_id": peer_id}
        case events.QuestionJoined(stranger, peer_id, common, safety_code, lang):
            return {"event": "question_joined", "stranger": stranger, "peer_id": peer_id,
                    "common_interests": list(common), "safety_code": safety_code, "lang": lang}
        case events.QuestionMessage(stranger, text):
            return {"event": "question_message", "stranger": stranger, "text": text}
        case events.QuestionTyping(stranger, active):
            return {"event": "question_typing", "stranger": stranger, "active": active}
        case events.QuestionLeft(stranger, reason, by_us):
            return {"event": "question_left", "stranger": stranger, "reason": reason,
                    "by_us": by_us}
    raise TypeError(f"unknown event {event!r}")


def format_event(event: events.Event) -> str | None:
    """The line a person sees for ``event`` (None: nothing to show)."""
    match event:
        case events.Ready(peer_id, _addrs, persistent):
            if persistent:
                return f"You are {peer_id[-8:]} (the identity kept in your --identity file)."
            return f"You are {peer_id[-8:]} today (a new stranger every run)."
        case events.Searching(interests, random, lang):
            if lang and not random:
                return (f"Looking for someone who speaks {lang}"
                        + (f" and likes {_human_list(interests)}..." if interests else "..."))
            if random and interests:
                return ("Nobody who shares your interests is around, so the next stranger "
                        "will be completely random. Try adding more interests!")
            if interests:
                return f"Looking for someone who likes {_human_list(interests)}..."
            return "Looking for a random stranger..."
        case events.Advertised():
            return None
        case events.Matched(_peer, common, safety_code, _initiator, path, lang, contact, question):
            lines = [f"You found {contact} again. Say hi!" if contact
                     else "You're now chatting with a random stranger. Say hi!"]
            if question:
                lines.append(f"Question to discuss: {_visible(question)}")
                lines.append("Someone asked it and is watching you two. Please try to discuss"
                             " the question, not just disconnect!")
            if common:
                lines.append(f"You both like {_human_list(common)}.")
            if lang:
                lines.append(f"The stranger speaks {lang}.")
            if path == "relayed":
                lines.append(RELAYED_LINE)
            lines.append(f"Safety code: {safety_code} (compare it to be sure nobody is in between)")
            return "\n".join(lines)
        case events.PathChanged(path):
            return DIRECT_LINE if path == "direct" else RELAYED_AGAIN_LINE
        case events.MessageReceived(_id, text, hidden, warnings):
            lines = [format_warnings(warnings)] if warnings else []
            lines.append(HIDDEN_LINE if hidden else f"Stranger: {_visible(text)}")
            return "\n".join(lines)
        case events.Sent(_id, text):
            return f"You: {text}"
        case events.Delivered() | events.Typing():
            return None
        case events.StrangerLeft("blocked", True):
            return "You blocked this stranger: you will not be matched with them again."
        case events.StrangerLeft(_reason, by_us):
            return "You have disconnected." if by_us else "Stranger has disconnected."
        case events.Blocked():
            return None
        case events.Warning(message):
            return f"! {message}"
        case events.Error(message):
            return f"! error: {message}"
        case events.Stopped():
            return None
        case events.Idle():
            return "You stopped looking. /next looks again."
        case events.Reachability(reachable, _addrs, relays):
            if reachable:
                return "Strangers can reach you directly."
            if relays:
                return f"You are behind a NAT: strangers reach you through {relays} relay(s)."
            return "You are behind a NAT: looking for a relay so strangers can reach you..."
        case events.Revealed(_id, text):
            return f"Stranger (revealed): {_visible(text)}"
        case events.Saved(path):
            return f"Chat log saved in {path}."
        case events.KeepOffered():
            return ("You offered to keep in touch. If the stranger offers too, you can find"
                    " each other again later; if not, nothing is shared.")
        case events.KeepAsked():
            return ("The stranger would like to keep in touch. /keep [NAME] to agree"
                    " (nothing is shared unless you do).")
        case events.QuestionJoined(stranger, _peer, common, _code, lang):
            liked = f" (likes {_human_list(common)})" if common else ""
            speaks = f" (speaks {lang})" if lang else ""
            waiting = (" Looking for a second stranger..." if stranger == 1
                       else " Both are here: watch them discuss your question.")
            return f"Stranger {stranger} joined{liked}{speaks}.{waiting}"
        case events.QuestionMessage(stranger, text):
            return f"Stranger {stranger}: {_visible(text)}"
        case events.QuestionTyping():
            return None
        case events.QuestionLeft(stranger, _reason, by_us):
            if by_us:
                return f"Stranger {stranger}'s chat was closed (the question is over)."
            return f"Stranger {stranger} has disconnected. /next asks two new strangers."
        case events.Kept(name, _peer_id):
            return (f"You both kept in touch: saved as {name}. Later, strangers contact"
                    f" {name} finds each other again.")
        case events.Language(lang):
            if lang:
                return f"Language: {lang} (strangers who speak it first; /lang CODE changes it)."
            return "No language lane: strangers of every language alike (/lang CODE sets one)."
        case events.Reported(path):
            return (f"Report saved in {path}. It holds the stranger's messages with proof that"
                    " the stranger sent them, and stays on this computer unless you send it on"
                    " (strangers verify-report checks it).")
        case events.LobbyCounts(counts):
            return format_lobby_counts(counts)
        case events.LobbyJoined() | events.LobbyMembers() | events.LobbySent():
            return None  # shown by the lobby's own UI (cli/lobby.py)
        case events.LobbyMessage(_id, _sender, nick, text):
            return f"{nick}: {_visible(text)}"
        case events.ChatInvited(_peer, nick):
            return f"{nick} invites you to a private chat: /accept {nick} or /decline {nick}"
    raise TypeError(f"unknown event {event!r}")


def format_lobby_counts(counts: tuple[tuple[str, int], ...]) -> str | None:
    """'3 people are in the chess lobby right now', as Omegle showed who was online."""
    busy = [(interest, n) for interest, n in counts if n > 0]
    if not busy:
        return None
    parts = [f"{n} in the {interest} lobby" for interest, n in busy]
    return (f"Right now: {_human_list(tuple(parts))} "
            f"(join with: strangers lobby {busy[0][0]!r}).")


HELP = """Commands:
  /next   leave this stranger and meet another one
  /stop   leave this stranger (or stop looking) and wait: /next looks again
  /quit   leave and exit (Ctrl-D or Ctrl-C too)
  /block  leave this stranger and never meet them again (strangers unblock undoes it)
  /status what this node is doing
  /reveal show the last message your word filter hid
  /report [reason]  save a signed report of this (or the last) stranger's messages
  /save [FILE]      save this (or the last) chat as a text file (Omegle's "save the log")
  /lang CODE        meet strangers of this language first (like fr; /lang alone: none)
  /keep [NAME]      offer to keep in touch; saved as NAME only if the stranger offers too
  /help   this help
Anything else is sent to the stranger, end-to-end encrypted (//text sends /text)."""


def status_to_json(peer_id: str, stats: NodeStatistics) -> dict[str, Any]:
    """The ``--json`` answer to ``{"cmd": "status"}``."""
    return {"event": "status", "peer_id": peer_id, "state": stats.state,
            "routing_table": stats.routing_table, "connected_peers": stats.connected_peers,
            "lookups": stats.lookups, "dht_messages": stats.dht_messages, "chats": stats.chats}


def format_status(stats: NodeStatistics) -> str:
    """The line a person sees for ``/status``."""
    return (f"Status: {stats.state}; {stats.connected_peers} peers connected, "
            f"{stats.routing_table} in the routing table; {stats.chats} chats so far.")



def format_blocks(blocks: list, now: float) -> str:
    """``strangers blocked``: one line per block, newest last (peer id, when, interests)."""
    if not blocks:
        return "You have blocked nobody."
    lines = []
    for block in blocks:
        ago = _ago(now - block.since)
        common = f" (you both liked {_human_list(block.interests)})" if block.interests else ""
        lines.append(f"{block.peer_id}  blocked {ago}{common}")
    return "\n".join(lines)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def blocks_to_json(blocks: list) -> dict[str, Any]:
    """``strangers blocked --json``."""
    return {"blocked": [{"peer_id": b.peer_id, "since": b.since,
                         "common_interests": list(b.interests)} for b in blocks]}
