"""The muxer chosen inside the Noise handshake (the libp2p Noise spec's ``stream_muxers``).

Each side lists the muxers it speaks in the extensions of its handshake
payload (the responder in message 2, the initiator in message 3) and takes
the first muxer of the *other* side's list that it speaks, as js-libp2p
and go-libp2p do; when both listed one, the connection starts that muxer
at once, with no multistream-select for it. A peer that lists none
(py-libp2p as it comes, strangers before this) gets multistream-select as
before, optimistic when we dial (:mod:`.multistream`), which already cost no
round trip of its own: what this saves is the negotiation's bytes, and the
round trip a foreign dialer that does not send its muxer proposal
optimistically would wait for. A peer whose list has no muxer we speak gets
multistream-select too (js-libp2p fails such a connection itself).

py-libp2p 0.8.1 reads and writes the extension in its payload messages but
acts on none of it. Here, on our hosts only (``install``):

* the Noise transport's handshakes are :class:`EarlyMuxerXX`: our payloads
  carry :data:`MUXERS`, and the session remembers what the peer listed
  (:attr:`early_muxer` on the secure session);
* ``patterns.verify_handshake_payload_sig`` is wrapped (module-wide, once):
  the handshake hands it the peer's payload, which it puts in a context
  variable of the handshake's own task (:data:`_PEER_PAYLOAD`);
* the muxer selector's ``select`` returns the early muxer, when there is
  one, for both roles.

Canaries: ``tests/adapters/test_canary_earlymuxer.py``.
"""

from __future__ import annotations

import contextvars

from libp2p.security.noise import patterns
from libp2p.security.noise.messages import NoiseExtensions, NoiseHandshakePayload
from libp2p.security.noise.patterns import PatternXX
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX

MUXERS = (str(YAMUX),)
"""The muxers our handshakes list, in our order of preference (strangers hosts speak Yamux only)."""

_PEER_PAYLOAD: contextvars.ContextVar[NoiseHandshakePayload | None] = contextvars.ContextVar(
    "strangers_noise_peer_payload", default=None)


def chosen_muxer(payload: NoiseHandshakePayload | None) -> str | None:
    """The first muxer of the peer's list (in ``payload``) that we speak, if it listed any."""
    extensions = payload.extensions if payload is not None else None
    if extensions is None:
        return None
    return next((str(muxer) for muxer in extensions.stream_muxers if str(muxer) in MUXERS), None)


class EarlyMuxerXX(PatternXX):
    """Noise XX whose payloads list :data:`MUXERS` and whose sessions know the peer's choice."""

    def make_handshake_payload(self, extensions: NoiseExtensions | None = None) -> NoiseHandshakePayload:
        if extensions is None:
            extensions = NoiseExtensions(stream_muxers=list(MUXERS))
        return super().make_handshake_payload(extensions)

    async def handshake_inbound(self, conn):
        return _with_choice(await _recording(super().handshake_inbound, conn))

    async def handshake_outbound(self, conn, remote_peer):
        return _with_choice(await _recording(super().handshake_outbound, conn, remote_peer))


async def _recording(handshake, *args):
    """Run ``handshake`` with the peer's payload recorded: (session, payload)."""
    token = _PEER_PAYLOAD.set(None)
    try:
        session = await handshake(*args)
        return session, _PEER_PAYLOAD.get()
    finally:
        _PEER_PAYLOAD.reset(token)


def _with_choice(result):
    session, payload = result
    session.early_muxer = chosen_muxer(payload)
    return session


def _recording_verify(verify):
    def verify_handshake_payload_sig(payload, pubkey):
        _PEER_PAYLOAD.set(payload)
        return verify(payload, pubkey)

    verify_handshake_payload_sig.original = verify
    return verify_handshake_payload_sig


def _early_select(selector) -> None:
    """``selector.select`` (the muxer's) returns the early muxer when the handshake agreed one."""
    negotiate = selector.select

    async def select(conn, is_initiator: bool, *args, **kwargs):
        protocol = getattr(conn, "early_muxer", None)
        for known, handler in selector.handlers.items():
            if protocol is not None and str(known) == protocol:
                return known, handler
        return await negotiate(conn, is_initiator, *args, **kwargs)

    select.early = True  # type: ignore[attr-defined]
    selector.select = select


def install(host, noise) -> None:
    """Early muxer negotiation on ``host``, whose security transport is ``noise``."""
    if not hasattr(patterns.verify_handshake_payload_sig, "original"):
        patterns.verify_handshake_payload_sig = _recording_verify(
            patterns.verify_handshake_payload_sig)

    def get_pattern() -> EarlyMuxerXX:
        return EarlyMuxerXX(noise.local_peer, noise.libp2p_privkey, noise.noise_privkey,
                            noise.early_data)

    noise.get_pattern = get_pattern
    selector = host.get_network().upgrader.muxer_multistream._selector
    if not getattr(selector.select, "early", False):
        _early_select(selector)


def installed(host) -> bool:
    selector = host.get_network().upgrader.muxer_multistream._selector
    return bool(getattr(selector.select, "early", False))


__all__ = ["MUXERS", "EarlyMuxerXX", "chosen_muxer", "install", "installed"]
