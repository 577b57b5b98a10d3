"""The one exception tree of strangers.

Each exception's message is the text a user sees; only ``strangers.cli`` turns
it into output and an exit code.  This module imports nothing, so every layer
(the pure ``crypto`` core included) may use it.
"""


class StrangersError(Exception):
    """Something went wrong in strangers."""


class LocalProtocolError(StrangersError):
    """We misused a protocol machine (a bug on our side, or a call in the wrong state)."""


class RemoteProtocolError(StrangersError):
    """The peer sent something the protocol does not allow."""


class CryptoError(StrangersError):
    """A handshake or message failed authentication, or was replayed or malformed."""


class ConfigError(StrangersError):
    """A setting given by the user is invalid (bad multiaddr, bad interest, unreadable identity...)."""


class HostFailed(StrangersError):
    """The libp2p host under the node stopped on an error of its own: the node cannot go on."""


class DiscoveryError(StrangersError):
    """A discovery record (a shared blocklist, say) is malformed, forged or out of bounds."""
