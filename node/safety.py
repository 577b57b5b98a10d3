"""The safety adapter: blocks, identity proofs, stamps, lanes and flood limits, with real time.

The policy is pure (``strangers.safety``, ``strangers.crypto.pow``); this
module keeps the state a node needs for it and answers the match service's
questions, in the order docs/protocol.md §5.9 gives:

1. an incoming match or chat stream: is its peer refused (blocked, or on a
   trusted list: :attr:`Safety.gate`), cooling down after a flood, over its
   stream or proposal budget, or over the bound of proposals in progress?
   Then the stream is reset before a byte is read.  A peer found flooding
   is disconnected.
2. a proposal read: the right lane, a valid identity proof and stamp?
   Otherwise a Refuse, before the matcher is asked.
3. a proposal we send: never to a refused peer; it carries our proof (we
   wait for it to be minted) and a fresh stamp; an Accept without a valid
   proof is not a match.

:func:`serve_proofs` mints our identity proof in the background (when it was
not kept: ``--identity FILE.pow``, or pre-minted by the last run) and then
pre-mints the next run's identity.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio
from libp2p.peer.id import ID

from strangers.crypto import pow
from strangers.discovery.matcher import Refusal
from strangers.discovery.proposal import Accept, Propose
from strangers.discovery.topics import GENERAL_LANE
from strangers.errors import ConfigError
from strangers.safety.blocks import BLOCKS_FILE, Block, BlockList, RefusalGate
from strangers.safety.limits import PROPOSALS, STREAMS, PeerLimits, Verdict

from . import stamping
from .identity import (
    Identity,
    fresh_identity,
    has_next_identity,
    keep_next_identity,
    save_proof,
)
from .minter import mint_proof
from .store import DataDir

logger = logging.getLogger(__name__)

MAX_PENDING_PROPOSALS = 16
"""Incoming proposals being read or answered at once (every peer together)."""
MAX_PENDING_PER_PEER = 2
"""... and of one peer (an honest one has one, two when dials cross)."""
INLINE_BITS = 10
"""A proof this easy (tests' difficulties) is minted at once, before the node starts."""
NEXT_IDENTITY_DELAY = 5.0
"""Seconds after our own proof before the next run's identity is minted
(the first search has the CPU first)."""


def difficulty_from(environ: Mapping[str, str] | None = None) -> pow.Difficulty:
    return pow.Difficulty.from_env(os.environ if environ is None else environ)


class Safety:
    """One node's blocks, proofs and limits."""

    def __init__(self, identity: Identity, *, data: DataDir | None = None,
                 difficulty: pow.Difficulty | None = None, lane: str = GENERAL_LANE,
                 proof: bytes | None = None, wall: Callable[[], float] = time.time) -> None:
        self.identity = identity
        self.local = identity.peer_id.to_bytes()
        self.data = data if data is not None else DataDir()
        self.difficulty = difficulty if difficulty is not None else difficulty_from()
        self.lane = lane
        self._wall = wall
        self.proof: bytes | None = None
        self.proof_ready = trio.Event()
        """Set once we hold a proof of our identity (we propose and accept from then on)."""
        if proof is not None:
            self.set_proof(proof)
        self.blocks = BlockList.from_json(self.data.read_json(BLOCKS_FILE, {}))
        self.gate = RefusalGate(self.blocks.refuses)
        """The one question matching asks about a peer (more sources plug in with add)."""
        self.proposals = PeerLimits(PROPOSALS)
        self.streams = PeerLimits(STREAMS)
        self.pending = 0
        self._pending: dict[ID, int] = {}
        self.disconnect: Callable[[ID], Awaitable[Any]] | None = None
        """How a flooding peer is cut off (the host's disconnect, set by the node)."""
        self._nursery: trio.Nursery | None = None
        self.refused = 0
        """Streams and proposals refused so far (for statistics and tests)."""

    def set_proof(self, proof: bytes) -> None:
        if not pow.identity_valid(self.local, proof, self.difficulty.identity):
            raise ConfigError("identity proof does not prove this identity")
        self.proof = proof
        self.proof_ready.set()

    # -- blocks ----------------------------------------------------------------------------

    def block(self, peer_id: str, interests: tuple[str, ...] = ()) -> tuple[Block, str | None]:
        """Block ``peer_id`` from now on and keep it in ``blocks.json``.

        Returns the entry, and why it could not be kept (it then holds for this run only).
        """
        entry = self.blocks.block(peer_id, self._wall(), interests)
        try:
            self.data.write_json(BLOCKS_FILE, self.blocks.to_json())
        except ConfigError as exc:
            return entry, str(exc)
        return entry, None

    def refuses(self, peer_id: ID) -> str | None:
        """Why we refuse ``peer_id`` (blocked, on a trusted list, cooling down), or None."""
        reason = self.gate.refuses(peer_id.to_base58())
        if reason is None and self.streams.cooling(peer_id.to_bytes(), trio.current_time()):
            reason = "flooding"
        return reason

    # -- incoming ----------------------------------------------------------------------------

    def admit(self, peer_id: ID, *, proposal: bool) -> bool:
        """Whether a stream of ``peer_id`` may be read (a proposal: ``proposal``)."""
        now = trio.current_time()
        peer = peer_id.to_bytes()
        reason = self.refuses(peer_id)
        verdict = self.streams.take(peer, now) if reason is None else Verdict.DENY
        if verdict is Verdict.ALLOW and proposal:
            verdict = self.proposals.take(peer, now)
            if verdict is Verdict.FLOODING:  # cool the peer down for every kind of stream
                self.streams.cool(peer, now)
        if verdict is Verdict.FLOODING:
            logger.info("peer %s floods us: disconnected, refused for a while", peer_id)
            self._cut_off(peer_id)
        if verdict is not Verdict.ALLOW:
            self.refused += 1
            logger.debug("stream of %s refused (%s)", peer_id, reason or verdict.value)
            return False
        return True

    def _cut_off(self, peer_id: ID) -> None:
        if self.disconnect is None or self._nursery is None:
            return
        disconnect = self.disconnect

        async def cut() -> None:
            with trio.move_on_after(2.0):
                try:
                    await disconnect(peer_id)
                except Exception as exc:  # gone already
                    logger.debug("disconnecting %s: %r", peer_id, exc)

        self._nursery.start_soon(cut)

    def guarded(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """``handler`` for streams of peers that :meth:`admit` lets in; others are reset unread."""

        async def handle(stream: Any) -> None:
            peer_id = getattr(getattr(stream, "muxed_conn", None), "peer_id", None)
            if isinstance(peer_id, ID) and not self.admit(peer_id, proposal=False):
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    try:
                        await stream.reset()
                    except Exception:  # gone already
                        pass
                return
            await handler(stream)

        return handle

    def open_slot(self, peer_id: ID) -> bool:
        """Take one of the slots for proposals in progress; release it with :meth:`close_slot`."""
        mine = self._pending.get(peer_id, 0)
        if self.pending >= MAX_PENDING_PROPOSALS or mine >= MAX_PENDING_PER_PEER:
            self.refused += 1
            return False
        self.pending += 1
        self._pending[peer_id] = mine + 1
        return True

    def close_slot(self, peer_id: ID) -> None:
        self.pending -= 1
        left = self._pending.get(peer_id, 1) - 1
        if left > 0:
            self._pending[peer_id] = left
        else:
            self._pending.pop(peer_id, None)

    def check_proposal(self, peer_id: ID, proposal: Propose) -> Refusal | None:
        """Why ``proposal`` (from ``peer_id``) is refused before the matcher sees it, or None."""
        if proposal.lane != self.lane:
            return Refusal.OTHER_LANE
        if not self.proof_ready.is_set():
            return Refusal.BUSY  # we cannot prove ourselves yet: ask again soon
        if not self.difficulty.required:
            return None
        peer = peer_id.to_bytes()
        if not pow.identity_valid(peer, proposal.proof, self.difficulty.identity):
            return Refusal.NO_PROOF
        if proposal.stamp is None or not pow.stamp_valid(
                proposal.stamp, peer, self.local, proposal.match_id, self._wall(),
                self.difficulty.stamp):
            return Refusal.NO_PROOF
        return None

    # -- outgoing ----------------------------------------------------------------------------

    async def proposal(self, candidate: ID, match_id: bytes, interests: tuple[str, ...]) -> Propose:
        """Our proposal to ``candidate``: proof, a fresh stamp (minted in slices,
        node/stamping.py: the dial runs beside it), our lane."""
        stamp = await stamping.mint_stamp(self.local, candidate.to_bytes(), match_id, self._wall(),
                                          self.difficulty.stamp)
        return Propose(match_id, interests, proof=self.proof, stamp=stamp, lane=self.lane)

    def accept_valid(self, candidate: ID, accept: Accept) -> bool:
        """Whether ``accept`` carries a valid proof of ``candidate``'s identity."""
        return not self.difficulty.required or pow.identity_valid(
            candidate.to_bytes(), accept.proof, self.difficulty.identity)


async def serve_proofs(safety: Safety, *, premint_next: bool, keep_in: Path | None = None,
                       task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Mint our proof if we have none (kept in ``keep_in`` if given), then the next run's identity."""
    if safety.proof is None and safety.difficulty.identity <= INLINE_BITS:
        nonce = pow.mint_identity(safety.local, safety.difficulty.identity)
        if nonce is not None:
            safety.set_proof(pow.encode_nonce(nonce))
            if keep_in is not None:
                save_proof(keep_in, pow.encode_nonce(nonce))
    async with trio.open_nursery() as nursery:
        safety._nursery = nursery
        task_status.started()
        if safety.proof is None:
            started = trio.current_time()
            proof = await mint_proof(safety.local, safety.difficulty.identity)
            safety.set_proof(proof)
            logger.info("identity proof minted in %.1f s", trio.current_time() - started)
            if keep_in is not None:
                save_proof(keep_in, proof)
        if premint_next and not has_next_identity(safety.data):
            await trio.sleep(NEXT_IDENTITY_DELAY)
            identity = fresh_identity()
            proof = await mint_proof(identity.peer_id.to_bytes(), safety.difficulty.identity)
            try:
                keep_next_identity(safety.data, identity, proof)
            except ConfigError as exc:
                logger.warning("next identity not kept: %s", exc)
        await trio.sleep_forever()  # the nursery carries the disconnects of flooding peers


# -- the user's block list, without a running node (``strangers blocked`` / ``unblock``) -------

def read_blocks(data: DataDir | None = None) -> list[Block]:
    """Every block kept in the data directory, oldest first."""
    data = data if data is not None else DataDir()
    return BlockList.from_json(data.read_json(BLOCKS_FILE, {})).entries()


def unblock(peer_id: str, data: DataDir | None = None) -> bool:
    """Forget the block of ``peer_id``; whether there was one (ConfigError if not writable)."""
    data = data if data is not None else DataDir()
    blocks = BlockList.from_json(data.read_json(BLOCKS_FILE, {}))
    if not blocks.unblock(peer_id):
        return False
    data.write_json(BLOCKS_FILE, blocks.to_json())
    return True
