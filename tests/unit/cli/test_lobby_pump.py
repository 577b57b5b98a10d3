"""cli/lobby.py's event printer: events waiting together leave in one write, in order."""

from __future__ import annotations

import json
from types import SimpleNamespace

import trio
import trio.testing

from strangers.cli import lobby as cli_lobby
from strangers.node import events


def _message(k: int) -> events.LobbyMessage:
    return events.LobbyMessage(f"id{k}", "12D3KooWpeer", "brave-otter-07", f"hello {k}")


async def test_waiting_events_go_out_in_one_write_and_later_ones_in_the_next(monkeypatch):
    writes: list[str] = []
    monkeypatch.setattr(cli_lobby, "_print", writes.append)
    send, receive = trio.open_memory_channel(100)
    node = SimpleNamespace(events=lambda: receive, nick="me")
    for k in range(3):
        send.send_nowait(_message(k))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cli_lobby._pump, node, "chess", True)
        await trio.testing.wait_all_tasks_blocked()
        assert len(writes) == 1
        assert [json.loads(line)["text"] for line in writes[0].split("\n")] == [
            "hello 0", "hello 1", "hello 2"]
        await send.send(_message(3))
        await trio.testing.wait_all_tasks_blocked()
        assert len(writes) == 2 and json.loads(writes[1])["text"] == "hello 3"
        await send.aclose()  # the node ended: the printer returns
    assert len(writes) == 2


async def test_a_write_holds_at_most_its_bound_of_lines(monkeypatch):
    writes: list[str] = []
    monkeypatch.setattr(cli_lobby, "_print", writes.append)
    send, receive = trio.open_memory_channel(1000)
    node = SimpleNamespace(events=lambda: receive, nick="me")
    total = cli_lobby.MAX_LINES_PER_WRITE + 5
    for k in range(total):
        send.send_nowait(_message(k))
    send.close()
    await cli_lobby._pump(node, "chess", True)
    assert [len(w.split("\n")) for w in writes] == [cli_lobby.MAX_LINES_PER_WRITE, 5]
