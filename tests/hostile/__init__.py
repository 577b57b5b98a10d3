"""A hostile strangers peer, written from docs/protocol.md and the v2 handshake spec only.

It imports nothing from ``strangers``: it is what a stranger who read our documents would write
to attack a node. ``peer`` runs the libp2p host and the protocol steps, ``crypto`` the handshake
and Double Ratchet, ``wire`` the framing, ``attacks`` the faults of issue 7. Run one by hand with
``python -m hostile ATTACK VICTIM_MULTIADDR -i INTEREST`` from the ``tests`` directory.
"""
