"""Canary for ``strangers.node.libp2p.securewrite``: a cancelled write must not desync Noise.

A cancellation delivered between Noise's encryption and the socket send
(here: inside the raw connection's write, where it lands when it arrives
while the writer waits at Yamux's write lock) leaves the send nonce one
ahead of what the peer saw. With py-libp2p's write the peer's next
decryption fails and the connection dies; with ours the write finishes and
the connection lives on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.secure_session import SecureSession

from strangers.node.identity import fresh_identity
from strangers.node.libp2p import framebatch, securewrite
from strangers.node.libp2p.host import build_host, quiet_library_logs, running_host

from canary import changed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "netsim"))
from roundtrips import ECHO, LOOPBACK, echo_handler, request  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    quiet_library_logs()


def _cancel_inside_the_next_raw_write(secured: SecureSession, scope: trio.CancelScope) -> None:
    raw = secured.conn.read_writer.read_write_closer
    original = raw.write

    async def write(data: bytes) -> None:
        del raw.write  # once
        scope.cancel()
        await original(data)

    raw.write = write


async def _write_cancelled_after_encrypting(with_fix: bool) -> bytes | Exception:
    """A write cancelled between encryption and send, then a request on a new stream."""
    server, client = build_host(fresh_identity()), build_host(fresh_identity())
    server.set_stream_handler(ECHO, echo_handler)
    atomic = SecureSession.write
    if not with_fix:  # the library's write, and its one write per frame under a lock
        SecureSession.write = atomic.original  # type: ignore[attr-defined,method-assign]
        framebatch.uninstall()
    try:
        with trio.fail_after(20):
            async with running_host(server, [LOOPBACK]), running_host(client, [LOOPBACK]):
                await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
                stream = await client.new_stream(server.get_id(), [ECHO])
                assert await request(stream) == b"hello"
                connection = client.get_network().get_connections(server.get_id())[0]
                with trio.CancelScope() as scope:
                    _cancel_inside_the_next_raw_write(connection.muxed_conn.secured_conn, scope)
                    await stream.write(b"\x00\x00\x00\x05world")
                    await trio.sleep(5)  # the cancellation lands here (or already in the write)
                try:
                    fresh = await client.new_stream(server.get_id(), [ECHO])
                    with trio.fail_after(5):
                        return await request(fresh, b"again")
                except Exception as exc:  # the connection died under us
                    return exc
    finally:
        SecureSession.write = atomic  # type: ignore[method-assign]
        framebatch.install()


def test_the_fix_is_installed_by_every_host() -> None:
    build_host(fresh_identity())
    assert securewrite.installed()


async def test_a_write_cancelled_after_encrypting_leaves_the_connection_working() -> None:
    assert await _write_cancelled_after_encrypting(with_fix=True) == b"again"


async def test_py_libp2p_loses_the_connection_to_such_a_write() -> None:
    outcome = await _write_cancelled_after_encrypting(with_fix=False)
    assert outcome != b"again", changed(
        "securewrite", "a write cancelled between encryption and send no longer breaks the connection")
