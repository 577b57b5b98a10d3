"""A pubsub message that cannot be checked is dropped, not fatal to the pubsub service.

py-libp2p 0.8.1 runs each published message a peer sends through
``Pubsub.push_msg`` as a task of the pubsub service (``manager.run_task``),
outside the stream's handler, so ``guard_inbound_streams`` and
``gossip.guarded_stream_handler`` do not cover it. With strict signing,
``signature_validator`` re-raises when the message's ``key`` field is not a
protobuf ``PublicKey`` (and its ``from`` is not an identity-multihash peer
id): one such RPC from any connected peer raised ``DecodeError`` out of the
task and stopped the pubsub service, so the lobby (and, in a bare program,
the whole trio run) ended (``tests/hostile/test_pubsub_crash.py``).

:class:`GuardedPubsub` drops a peer's message whose processing raises, with
a logged reason; our own publications still raise to their caller.
``gossip.build_pubsub`` should build it in place of ``Pubsub``.
"""

from __future__ import annotations

import logging

from libp2p.pubsub.pubsub import Pubsub

logger = logging.getLogger(__name__)


class GuardedPubsub(Pubsub):
    """``Pubsub`` whose handling of a peer's message never raises out of its task."""

    async def push_msg(self, msg_forwarder, msg) -> None:
        if msg_forwarder == self.my_id:  # our own publish: its caller hears of a failure
            await super().push_msg(msg_forwarder, msg)
            return
        try:
            await super().push_msg(msg_forwarder, msg)
        except Exception as exc:  # a message we cannot check or route: dropped
            logger.info("pubsub message from %s dropped: %r", msg_forwarder, exc)
