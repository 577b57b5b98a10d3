"""docs/protocol.md shows the state diagrams that docs/gen_diagrams.py draws from the code now.

When a transition table changes, these tests fail until the doc is redrawn:

    python docs/gen_diagrams.py --write
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from strangers.crypto import session
from strangers.discovery import matcher

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "docs" / "gen_diagrams.py"
DOC = ROOT / "docs" / "protocol.md"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_diagrams", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_holds_every_generated_block_and_no_other(gen):
    found = gen.extract_blocks(DOC.read_text(encoding="utf-8"))
    assert set(found) == {"matcher", "chat-session"}


@pytest.mark.parametrize("name", ["matcher", "chat-session"])
def test_each_block_in_the_doc_is_what_the_code_draws_now(gen, name):
    found = gen.extract_blocks(DOC.read_text(encoding="utf-8"))
    assert found.get(name) == gen.render_blocks()[name], (
        f"docs/protocol.md: the {name!r} diagram is stale; run: python docs/gen_diagrams.py --write"
    )


@pytest.mark.parametrize(
    ("draw", "table"),
    [("matcher_diagram", matcher.TRANSITIONS), ("session_diagram", session.TRANSITIONS)],
)
def test_every_transition_of_the_table_is_drawn(gen, draw, table):
    lines = getattr(gen, draw)().splitlines()
    for (source, trigger), target in table.items():
        label = trigger.value if hasattr(trigger, "value") else trigger
        arrows = [line for line in lines if line.startswith(f"    {source.name} --> {target.name} : ")]
        assert len(arrows) == 1, (source, target)
        assert label in arrows[0].split(" : ", 1)[1].split(", ")


def test_a_change_in_a_table_changes_the_block(gen, monkeypatch):
    before = gen.render_blocks()["matcher"]
    changed = dict(matcher.TRANSITIONS)
    changed[(matcher.MatchState.MATCHED, "refused")] = matcher.MatchState.SEARCHING
    monkeypatch.setattr(matcher, "TRANSITIONS", changed)
    after = gen.render_blocks()["matcher"]
    assert after != before
    assert "    MATCHED --> SEARCHING : refused" in after.splitlines()


def test_states_outside_the_table_are_still_drawn(gen):
    lines = gen.session_diagram().splitlines()
    assert "    ERROR : in no transition of the table" in lines
    assert "    [*] --> HANDSHAKING" in lines


def test_write_replaces_only_the_marked_blocks(gen):
    text = (
        "intro\n<!-- generated: matcher -->\nold\n<!-- /generated -->\nmiddle\n"
        "<!-- generated: chat-session -->\nold\n<!-- /generated -->\nend\n"
    )
    new = gen.replace_blocks(text, gen.render_blocks())
    assert new.startswith("intro\n") and "\nmiddle\n" in new and new.endswith("end\n")
    assert gen.extract_blocks(new) == gen.render_blocks()
    with pytest.raises(ValueError):
        gen.replace_blocks("no markers here", gen.render_blocks())
