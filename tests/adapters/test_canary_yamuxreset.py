"""Canary for ``strangers.node.libp2p.yamuxreset``: bytes sent before a reset are read before it.

A server writes a message and resets its stream at once. The client reads
only once both frames are in (as happens whenever the two arrive in one
TCP read): py-libp2p 0.8.1's sized read raises the reset and the message
is lost; with ours the read returns the message, and the next read raises
the reset.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from libp2p.network.stream.exceptions import StreamReset
from libp2p.peer.peerinfo import info_from_p2p_addr

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import yamuxreset
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host

from canary import changed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from roundtrips import LOOPBACK  # noqa: E402

LAST_WORDS = "/strangers-test/last-words/1.0.0"
MESSAGE = bytes(range(52))


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


async def _last_words(stream) -> None:
    await stream.read(1)  # the client's request
    await stream.write(MESSAGE)
    await stream.reset()


async def _read_after_the_reset_is_in(*, with_fix: bool) -> list[bytes | Exception]:
    """What the client's sized reads give once the server's message and reset are both in."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    server.set_stream_handler(LAST_WORDS, _last_words)
    if not with_fix:
        yamuxreset.uninstall()
    reads: list[bytes | Exception] = []
    try:
        with trio.fail_after(20):
            async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
                await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
                stream = await client.new_stream(server.get_id(), [LAST_WORDS])
                await stream.write(b"?")
                muxed = stream.muxed_stream
                while not muxed.reset_received:  # both frames in, none read
                    await trio.sleep(0.005)
                for size in (20, 40, 1):
                    try:
                        reads.append(await stream.read(size))
                    except Exception as exc:
                        reads.append(exc)
                        break
    finally:
        yamuxreset.install()
    return reads


async def test_the_librarys_sized_read_drops_what_came_before_a_reset():
    reads = await _read_after_the_reset_is_in(with_fix=False)
    assert len(reads) == 1 and isinstance(reads[0], StreamReset), changed(
        "yamuxreset", f"a sized read after a reset no longer drops the data before it: {reads!r}; "
        "the patch may be unneeded")


async def test_with_the_fix_the_data_comes_first_then_the_reset():
    reads = await _read_after_the_reset_is_in(with_fix=True)
    assert reads[:2] == [MESSAGE[:20], MESSAGE[20:]], reads
    assert isinstance(reads[2], StreamReset), reads


def test_the_fix_is_installed_by_every_host():
    yamuxreset.uninstall()
    build_host(fresh_identity())
    assert yamuxreset.installed()
