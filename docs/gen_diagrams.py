"""Draw the state diagrams of ``docs/protocol.md`` from the transition tables in the code.

    python docs/gen_diagrams.py            # print every block, ready to paste
    python docs/gen_diagrams.py --write    # replace the blocks in docs/protocol.md

Each block sits in ``docs/protocol.md`` between ``<!-- generated: NAME -->``
and ``<!-- /generated -->``.  ``tests/unit/test_docs_diagrams.py`` fails when a
block there differs from what this script draws now, so the diagrams cannot
drift from the code.

Sources (read at call time, never copied):

* ``matcher``: :data:`strangers.discovery.matcher.TRANSITIONS`, keys
  ``(MatchState, input name)``; the initial state is that of a new ``Matcher``.
* ``chat-session``: :data:`strangers.crypto.session.TRANSITIONS`, keys
  ``(ConnectionState, Trigger)``; the initial states are those of a new
  initiator and a new responder ``ChatConnection``.

Edges between the same two states are merged into one arrow whose label lists
the inputs in table order.  A state with no outgoing transition gets an arrow to
``[*]``; an enum member that appears in no transition is declared with the note
"in no transition of the table" (the chat session's ``ERROR``, entered by any
failure in ``next_event()``).
"""

from __future__ import annotations

import enum
import random
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

DOC = Path(__file__).resolve().parent / "protocol.md"
_BLOCK = re.compile(
    r"<!-- generated: (?P<name>[a-z0-9-]+) -->\n(?P<body>.*?)<!-- /generated -->",
    re.DOTALL,
)


def _label(value: object) -> str:
    return value.value if isinstance(value, enum.Enum) else str(value)


def state_diagram(
    transitions: Mapping[tuple[enum.Enum, object], enum.Enum],
    *,
    states: type[enum.Enum],
    initial: enum.Enum | tuple[enum.Enum, ...],
) -> str:
    """A Mermaid ``stateDiagram-v2`` block (with its fences) for ``transitions``."""
    edges: dict[tuple[str, str], list[str]] = {}
    used: set[enum.Enum] = set()
    for (source, trigger), target in transitions.items():
        edges.setdefault((source.name, target.name), []).append(_label(trigger))
        used.update((source, target))
    sources = {source for source, _trigger in transitions}
    initials = initial if isinstance(initial, tuple) else (initial,)
    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f"    [*] --> {state.name}" for state in initials]
    for (source, target), labels in edges.items():
        lines.append(f"    {source} --> {target} : {', '.join(labels)}")
    for state in states:
        if state not in used:
            lines.append(f"    {state.name} : in no transition of the table")
        if state not in sources:
            lines.append(f"    {state.name} --> [*]")
    lines.append("```")
    return "\n".join(lines) + "\n"


def matcher_diagram() -> str:
    """The matcher (``strangers.discovery.matcher``)."""
    from strangers.discovery import matcher

    fresh = matcher.Matcher(local_id=b"", interests=())
    return state_diagram(matcher.TRANSITIONS, states=matcher.MatchState, initial=fresh.state)


def session_diagram() -> str:
    """The chat connection (``strangers.crypto.session``): one initial state per role."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from strangers.crypto import session

    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    initial = tuple(
        session.ChatConnection(
            role=role,
            match_id=bytes(16),
            local_identity=key,
            remote_identity=key.public_key().public_bytes_raw(),
            rng=random.Random(0).randbytes,
        ).state
        for role in session.Role
    )
    return state_diagram(session.TRANSITIONS, states=session.ConnectionState, initial=initial)


BLOCKS: dict[str, Callable[[], str]] = {
    "matcher": matcher_diagram,
    "chat-session": session_diagram,
}


def render_blocks() -> dict[str, str]:
    """Every block as it must appear in the doc: name -> fenced Mermaid text."""
    return {name: draw() for name, draw in BLOCKS.items()}


def extract_blocks(text: str) -> dict[str, str]:
    """The generated blocks found in ``text``: name -> text between the markers."""
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        name = match["name"]
        if name in found:
            raise ValueError(f"generated block {name!r} appears twice")
        found[name] = match["body"]
    return found


def replace_blocks(text: str, blocks: Mapping[str, str]) -> str:
    """``text`` with each generated block replaced by ``blocks[name]``."""
    missing = set(blocks) - set(extract_blocks(text))
    if missing:
        raise ValueError(f"no markers for {sorted(missing)!r} in the document")
    return _BLOCK.sub(
        lambda match: (
            f"<!-- generated: {match['name']} -->\n"
            f"{blocks.get(match['name'], match['body'])}<!-- /generated -->"
        ),
        text,
    )


def main(argv: list[str]) -> int:
    blocks = render_blocks()
    if argv == ["--write"]:
        DOC.write_text(replace_blocks(DOC.read_text(encoding="utf-8"), blocks), encoding="utf-8")
        return 0
    if argv:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    for name, block in blocks.items():
        sys.stdout.write(f"<!-- generated: {name} -->\n{block}<!-- /generated -->\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
