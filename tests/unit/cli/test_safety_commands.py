"""/block and {"cmd": "block"}, the blocked/unblock subcommands, --adult (cli/)."""

from __future__ import annotations

import json

import pytest

from strangers.cli import main as cli_main
from strangers.cli.commands import Block, parse_command, parse_user_line
from strangers.cli.format import HELP, blocks_to_json, event_to_json, format_blocks, format_event
from strangers.node import events
from strangers.safety.blocks import Block as BlockEntry

PEER = "12D3KooW" + "a" * 44


def test_block_is_one_command_for_every_interface() -> None:
    assert parse_command('{"cmd": "block"}') == Block()
    assert parse_user_line("/block") == Block()
    assert parse_user_line(" /BLOCK ") == Block()
    assert "/block" in HELP


def test_block_events_as_json_and_as_lines() -> None:
    assert event_to_json(events.Blocked(PEER, ("cinema",))) == {
        "event": "blocked", "peer_id": PEER, "common_interests": ["cinema"]}
    assert format_event(events.Blocked(PEER)) is None
    left = events.StrangerLeft("blocked", True)
    assert event_to_json(left) == {"event": "stranger_left", "reason": "blocked", "by_us": True}
    assert "blocked" in format_event(left)
    assert format_event(events.StrangerLeft("next", True)) == "You have disconnected."


def test_the_block_list_as_lines_and_json() -> None:
    blocks = [BlockEntry(PEER, 1000.0, ("cinema", "jazz")), BlockEntry("Qm" + "b" * 44, 90000.0)]
    text = format_blocks(blocks, 90030.0)
    assert text.splitlines() == [
        f"{PEER}  blocked 1 day ago (you both liked cinema and jazz)",
        f"{'Qm' + 'b' * 44}  blocked just now"]
    assert format_blocks([], 0.0) == "You have blocked nobody."
    assert "3 hours ago" in format_blocks([BlockEntry(PEER, 0.0)], 3 * 3600 + 5)
    assert blocks_to_json(blocks)["blocked"][0] == {
        "peer_id": PEER, "since": 1000.0, "common_interests": ["cinema", "jazz"]}


def test_blocked_and_unblock_subcommands(capsys) -> None:
    from strangers.node.identity import fresh_identity
    from strangers.node.safety import Safety

    assert cli_main.main(["blocked"]) == 0
    assert capsys.readouterr().out == "You have blocked nobody.\n"
    assert cli_main.main(["unblock", PEER]) == 1
    assert "is not blocked" in capsys.readouterr().err

    class Wall:
        def __call__(self) -> float:
            return 5000.0

    import trio

    async def block() -> None:
        assert Safety(fresh_identity(), wall=Wall()).block(PEER, ("chess",))[1] is None

    trio.run(block)
    assert cli_main.main(["blocked", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"blocked": [
        {"peer_id": PEER, "since": 5000.0, "common_interests": ["chess"]}]}
    assert cli_main.main(["unblock", PEER]) == 0
    assert capsys.readouterr().out == f"Unblocked {PEER}.\n"
    assert cli_main.main(["blocked"]) == 0
    assert "nobody" in capsys.readouterr().out


@pytest.mark.parametrize("args,lane", [([], "general"), (["--adult"], "adult")])
def test_adult_chooses_the_lane(args, lane) -> None:
    parsed = cli_main.build_parser().parse_args(["chat", "--no-bootstrap", *args])
    config = cli_main._config_from(parsed)
    assert config.lane == lane and config.adult == (lane == "adult")
    serve = cli_main._config_from(cli_main.build_parser().parse_args(["serve", "--no-bootstrap"]))
    assert serve.lane == "general"
