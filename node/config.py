"""Node settings, validated at construction (bad values raise ConfigError)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from multiaddr import Multiaddr

from strangers.discovery.interests import normalize_interests
from strangers.discovery.language import normalize_lang
from strangers.discovery.listrecord import key_from_text
from strangers.discovery.topics import ADULT_LANE, GENERAL_LANE, first_search_keys
from strangers.errors import ConfigError, DiscoveryError

DEFAULT_BOOTSTRAP = (
    # The public libp2p / IPFS (Amino DHT) bootstrap peers, as kubo ships them today
    # (its autoconf fallback list, kubo 0.37+; js-libp2p's and Helia's lists are the same
    # peers). The /dnsaddr entries are resolved at launch (node/libp2p/dnsaddr.py);
    # kubo's QUIC entry for mars.i.ipfs.io is left out: we dial TCP only.
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
)
DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/0"


def parse_listen(text: str) -> Multiaddr:
    try:
        addr = Multiaddr(text)
    except Exception:
        raise ConfigError(f"bad listen address {text!r} (expected e.g. /ip4/0.0.0.0/tcp/0)") from None
    names = [proto.name for proto in addr.protocols()]
    if len(names) != 2 or names[0] not in ("ip4", "ip6") or names[1] != "tcp":
        raise ConfigError(f"listen address {text!r} must be /ip4/<addr>/tcp/<port> or /ip6/...")
    return addr


def parse_peer_addr(text: str) -> PeerInfo:
    """A bootstrap multiaddr that ends in /p2p/<peer id>."""
    try:
        addr = Multiaddr(text)
    except Exception:
        raise ConfigError(f"bad bootstrap address {text!r}") from None
    try:
        return info_from_p2p_addr(addr)
    except Exception:
        raise ConfigError(
            f"bootstrap address {text!r} must end with /p2p/<peer id>"
        ) from None


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start."""

    interests: tuple[str, ...] = ()
    chat: bool = True
    """Look for strangers (False: only serve the DHT, like ``strangers serve``)."""
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    bootstrap: tuple[str, ...] | None = None
    """None means the public default list; () means none at all."""
    identity_file: Path | None = None
    mdns: bool = True
    random_after: float = 10.0
    interests_only: bool = False
    auto_next: bool = True
    """Look for the next stranger by itself when a chat ends."""
    behind_nat: bool = False
    """Take this node as not reachable from outside (skip AutoNAT): reserve relays."""
    hide_ip: bool = False
    """Privacy mode: strangers reach us only through relays, never directly."""
    relay: bool = True
    """Relay circuits for others once reachable (a serve node is assumed reachable)."""
    filter_words: Path | None = None
    """A word list (one a line): a stranger's messages that match arrive hidden.
    None: ``filter-words.txt`` in the data directory, when there is one."""
    trust_lists: tuple[str, ...] = ()
    """Shared blocklists this user trusts (curator keys, 64 hex): never match anyone on them."""
    adult: bool = False
    """The adult lane (``--adult``): its topic keys and proposals never meet the general lane's."""
    lang: str = ""
    """The language lane (ISO 639-1, ``--lang``): strangers of this language first,
    then anyone after the random fallback. "" : no lane (the CLI defaults to the locale's)."""
    question: str = ""
    """Question mode (``strangers ask``): ask this and watch two strangers discuss it."""
    questions: bool = False
    """``--questions``: accept to discuss questions of people who watch (protocol §5.11)."""
    identity_seed: bytes | None = field(default=None, repr=False)
    """A 32-byte Ed25519 seed to use as identity (a kept contact's key, node/contacts.py)."""
    expect_peer: str | None = None
    """Match nobody but this peer id (base58): ``strangers contact NAME``."""
    contact_name: str = ""
    """The contact looked for (shown on ``matched``)."""
    listen_addrs: tuple[Multiaddr, ...] = field(init=False, repr=False)
    bootstrap_peers: tuple[PeerInfo, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interests", normalize_interests(self.interests))
        object.__setattr__(self, "lang", normalize_lang(self.lang))
        if self.question:
            from strangers.discovery.proposal import check_question

            object.__setattr__(self, "question", " ".join(str(self.question).split()))
            check_question(self.question, ConfigError)
        if self.identity_seed is not None and (type(self.identity_seed) is not bytes
                                               or len(self.identity_seed) != 32):
            raise ConfigError("an identity seed is 32 bytes")
        if not self.listen:
            raise ConfigError("at least one listen address is needed")
        object.__setattr__(self, "listen_addrs", tuple(parse_listen(a) for a in self.listen))
        if not isinstance(self.random_after, (int, float)) or not 0 <= self.random_after <= 86400:
            raise ConfigError(f"--random-after must be between 0 and 86400 seconds, got {self.random_after!r}")
        if self.hide_ip and not self.chat:
            raise ConfigError("--hide-ip is for chat nodes (a serve node's address is public)")
        if self.hide_ip and self.bootstrap == ():
            raise ConfigError("--hide-ip needs bootstrap peers: they are the only nodes it "
                              "dials directly, and its relays")
        if self.hide_ip:  # mDNS would hand our LAN address to every stranger nearby
            object.__setattr__(self, "mdns", False)
        for key in self.trust_lists:
            try:
                key_from_text(key)
            except DiscoveryError as exc:
                raise ConfigError(f"--trust-list {key!r:.80}: {exc}") from None
        bootstrap = DEFAULT_BOOTSTRAP if self.bootstrap is None else self.bootstrap
        object.__setattr__(self, "bootstrap_peers", tuple(parse_peer_addr(a) for a in bootstrap))

    @property
    def reachable_unknown(self) -> bool:
        """Whether AutoNAT has to find out (no option decided it)."""
        return not (self.behind_nat or self.hide_ip)

    @property
    def lane(self) -> str:
        return ADULT_LANE if self.adult else GENERAL_LANE

    def first_search_keys(self, now: float) -> list[bytes]:
        """The keys this node's first search walks first (none for a node that does not
        search): the launch connects to the cached servers closest to them."""
        if not self.chat or self.expect_peer:
            return []
        return first_search_keys(self.interests, now=now, lane=self.lane, lang=self.lang,
                                 asking=bool(self.question))

    @property
    def uses_default_bootstrap(self) -> bool:
        return self.bootstrap is None

    @property
    def bootstrap_addrs(self) -> tuple[str, ...]:
        """The bootstrap list as given (``/dnsaddr`` entries not resolved yet)."""
        return DEFAULT_BOOTSTRAP if self.bootstrap is None else self.bootstrap
