"""A write on a secure connection goes out whole or kills the connection: never half-done.

py-libp2p's :class:`~libp2p.security.secure_session.SecureSession` writes
by encrypting (Noise's send nonce moves on) and then sending. A task
cancelled between the two (its deadline, a nursery closing, a lost race)
leaves a message encrypted and never sent, or sent in part: the peer's next
decryption fails (``NoiseInvalidMessage``, ``InvalidTag``) and its Yamux
tears the whole connection down, every stream on it with it. It happens
when a cancellation is delivered while a writer waits at Yamux's write
lock, which yields to the scheduler without raising: the writer then
encrypts and raises only at the socket. Seen as a chat connection closed by
the responder's swarm right after the match (1 run in 15 of
``tests/netsim/matchtrips.py`` with AutoNAT on), the initiator left waiting
on a dead stream.

:func:`install` makes the write atomic with respect to cancellation: a
cancellation before the write raises before anything is encrypted; once
encrypting has begun, the write finishes shielded (bounded by
:data:`WRITE_TIMEOUT`, after which the connection is closed: it cannot be
used any more) and the cancellation lands at the caller's next checkpoint.
Canary: ``tests/adapters/test_canary_securewrite.py``.
"""

from __future__ import annotations

import logging

import trio
from libp2p.io.exceptions import IOException
from libp2p.security.secure_session import SecureSession

logger = logging.getLogger(__name__)

WRITE_TIMEOUT = 20.0
"""Seconds a started write may take (a peer that stopped reading); then the connection is closed."""


class WriteAbandoned(IOException):
    """A started write could not finish: the connection was closed instead."""


def _atomic(write):
    async def atomic_write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()  # cancelled already: nothing encrypted
        with trio.CancelScope(shield=True):
            with trio.move_on_after(WRITE_TIMEOUT):
                await write(self, data)
                return
            logger.info("a secure write did not finish in %.0f s: connection closed", WRITE_TIMEOUT)
            try:
                await self.close()
            except Exception as exc:  # closing a connection that broke under us
                logger.debug("closing after an abandoned write: %r", exc)
        raise WriteAbandoned(f"write of {len(data)} bytes did not finish in {WRITE_TIMEOUT:.0f} s")

    atomic_write.original = write
    return atomic_write


def install() -> None:
    """Make ``SecureSession.write`` atomic under cancellation (once per process)."""
    if not hasattr(SecureSession.write, "original"):
        SecureSession.write = _atomic(SecureSession.write)  # type: ignore[method-assign]


def installed() -> bool:
    return hasattr(SecureSession.write, "original")


__all__ = ["WRITE_TIMEOUT", "WriteAbandoned", "install", "installed"]
