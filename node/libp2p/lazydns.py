"""A multiaddr DNS resolver makes its dnspython resolver when it first resolves a name.

py-libp2p 0.8.1's swarm makes a ``multiaddr.resolvers.DNSResolver`` when it
is built (``Swarm._init_connection_management``), and that makes a
``dns.asyncresolver.Resolver`` at once: it imports dnspython's resolver,
message and query modules and reads ``/etc/resolv.conf``, ~40 ms of every
launch before ``ready`` for a resolver a strangers host never asks (its
peers are dialled by IP address; ``/dnsaddr`` bootstrap names are resolved
by :mod:`.dnsaddr`, after ``ready``). The executable also defers importing
those modules (:data:`strangers.lean_imports.DEFERRED`), which only helps if
nothing runs them at start.

:func:`install` leaves ``DNSResolver.__init__`` empty and turns ``_resolver``
into an attribute made on first use, with the same call the library makes.
A ``/dns4`` address that does reach the swarm resolves as before, only
later. Canary: ``tests/adapters/test_canary_lazydns.py``.
"""

from __future__ import annotations

from typing import Any

from multiaddr.resolvers.dns import DNSResolver


class _MadeOnFirstUse:
    """``DNSResolver._resolver``: dnspython's resolver, made (once per instance) when read."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        import dns.asyncresolver

        resolver = dns.asyncresolver.Resolver()
        instance.__dict__["_resolver"] = resolver  # the instance's own from now on
        return resolver


def _empty_init(self: DNSResolver) -> None:
    return None


def install() -> None:
    """Patch ``DNSResolver`` (process-wide, once)."""
    if not installed():
        _empty_init.original = DNSResolver.__init__  # type: ignore[attr-defined]
        DNSResolver.__init__ = _empty_init
        DNSResolver._resolver = _MadeOnFirstUse()


def uninstall() -> None:
    """Back to the library's eager resolver (canaries compare the two)."""
    if installed():
        DNSResolver.__init__ = _empty_init.original  # type: ignore[attr-defined]
        del DNSResolver._resolver


def installed() -> bool:
    return DNSResolver.__init__ is _empty_init


__all__ = ["install", "installed", "uninstall"]
