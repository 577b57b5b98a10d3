"""Start the ``strangers`` executable without the parts of py-libp2p it never runs.

py-libp2p 0.8.1 imports every transport and security protocol it has as soon as
any of its modules is imported: ``libp2p.custom_types`` (imported by nearly
everything) names the QUIC stream type, so ``aioquic``, ``service_identity``,
pyOpenSSL and ``cryptography.x509`` load; ``libp2p.host.basic_host`` imports
AutoTLS's ACME client (``requests``, ``httpx``, ``urllib3``) and py-libp2p's own
mDNS (zeroconf and asyncio; we run our own service, imported after ``ready``);
the package ``__init__`` files import the WebSocket transport (``trio_websocket``,
``wsproto``, ``h11``) and TLS. A strangers host runs TCP, Noise and Yamux only
(:func:`strangers.node.libp2p.host.build_host`), so a third of the CPU a
launch spends importing went on code it never executes (docs/performance.md,
"Start-up imports").

:func:`install` puts a finder first on ``sys.meta_path`` that answers the
modules under :data:`UNUSED` with stand-ins. Any name read from a stand-in is a
class (an ``Exception`` subclass, so type unions, ``isinstance`` checks and
``except`` clauses that mention it keep working and never match); calling or
instantiating it raises :class:`NotLoaded`, naming what was asked for. Nothing
else changes: the library's own ``__init__`` files run as before.

Only the executable installs it (``cli/main.py``, before it imports the
node), and only if py-libp2p has not been imported yet. Programs and tests
that import :mod:`strangers.node` get the whole library; the end-to-end tests
run the executable, so they run the lean process. ``STRANGERS_FULL_LIBP2P=1``
turns it off. ``tests/adapters/test_canary_lean_imports.py`` checks that the library
still reaches these modules only through names it does not call on our path.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.abc imports importlib.resources: ~10 ms of a launch
    from importlib.abc import Loader
    from importlib.abc import MetaPathFinder as _FinderBase
else:
    Loader = _FinderBase = object  # the import system needs only the methods

UNUSED: tuple[str, ...] = (
    "libp2p.transport.quic",  # QUIC (aioquic, pyOpenSSL, service_identity, x509)
    "libp2p.transport.websocket",  # WebSocket (trio_websocket, wsproto, h11)
    "libp2p.security.tls",  # TLS 1.3 security and AutoTLS (ACME: requests, httpx)
    "libp2p.discovery.mdns",  # py-libp2p's mDNS (zeroconf, asyncio): node/libp2p/mdns.py is ours
    # py-libp2p's bootstrap discovery (a DNS resolver made at import): node/frontdoor.py is ours
    "libp2p.discovery.bootstrap",
)
"""Module trees of py-libp2p that a strangers host never runs."""

ABSENT: tuple[str, ...] = ("aioquic", "cffi")
"""Optional packages that look not installed: dnspython (``multiaddr``'s DNS
resolver) loads ``aioquic`` for DNS over QUIC when its metadata says it can
(we tell it not to, with ``dns._features.force``, its documented override),
and py-libp2p's QUIC, its only other user, is a stand-in. pycryptodome (RSA
keys of public bootstrap peers) binds its C code with ``cffi`` when it can,
parsing C declarations with pycparser at import (~80 ms of a launch), and
with ``ctypes`` otherwise, its documented fallback; nothing else we run
imports ``cffi`` (PyNaCl's compiled binding needs only ``_cffi_backend``)."""

DEFERRED: tuple[str, ...] = (
    # dnspython: multiaddr's and our /dnsaddr resolvers (bootstrap names, after ready)
    "dns.asyncresolver", "dns.resolver", "dns.rdtypes.ANY.TXT", "dns.rdtypes.IN.A",
    "dns.rdtypes.IN.AAAA",
    "cryptography.x509",  # AutoTLS certificates in libp2p.host.basic_host (never run)
    # pycryptodome, for RSA keys of public bootstrap peers and the unused secio/pnet
    "Crypto.Hash.SHA256", "Crypto.Signature.pkcs1_15", "Crypto.Cipher.Salsa20",
    "Crypto.Cipher.AES", "Crypto.Util.Counter",
)
"""Modules a launch imports but rarely or never runs: each is created empty
at import and executed on first use of a name in it (:class:`Deferred`).
Exact names, not trees: a deferred package's submodules import as usual.
Only modules imported as ``import a.b`` or ``from a import b`` (never ``from
a.b import name``, which reads a name at once) defer anything; the canary
``test_canary_lean_imports.py::test_the_deferred_modules_stay_unloaded_until_used``
fails if a launch executes one of them before ``ready``."""

FULL_ENV = "STRANGERS_FULL_LIBP2P"


class NotLoaded(RuntimeError):
    """A part of py-libp2p that the strangers executable does not load was used."""


def _stand_in_class(module: str, name: str) -> type:
    qualified = f"{module}.{name}"

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise NotLoaded(
            f"{qualified} is part of py-libp2p that strangers does not load "
            f"(strangers.lean_imports; {FULL_ENV}=1 loads it)"
        )

    return type(name, (Exception,), {"__new__": refuse, "__module__": module})


class StandIn(types.ModuleType):
    """A module of :data:`UNUSED`: every public name is a class that refuses use."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"stand-in for {name} (strangers.lean_imports)")
        self.__path__: list[str] = []  # a package: its submodules are stand-ins too

    def __getattr__(self, name: str) -> type:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _stand_in_class(self.__name__, name)
        setattr(self, name, value)
        return value


_PROBED_DUNDERS = frozenset({
    "__path__", "__file__", "__cached__", "__spec__", "__loader__", "__package__",
    "__name__", "__builtins__", "__class__", "__dict__", "__wrapped__", "__origin__",
})
"""Names the import system and introspection look up without wanting the module
run (``from a import b`` asks ``a`` for ``__path__``): answered "absent"."""

_load_lock = threading.RLock()


class Deferred(types.ModuleType):
    """A module of :data:`DEFERRED` not run yet: the first name read from it runs it.

    Its code runs in this very module object (so every reference handed out
    before stays right), which then becomes a plain module.
    """

    def __getattr__(self, name: str) -> object:
        if name in _PROBED_DUNDERS:
            raise AttributeError(name)
        with _load_lock:
            if type(self) is Deferred:  # not run by another thread meanwhile
                spec = self.__spec__
                assert spec is not None and spec.loader is not None
                self.__class__ = types.ModuleType  # type: ignore[assignment]  # a plain module from now
                spec.loader.exec_module(self)
        return types.ModuleType.__getattribute__(self, name)


class _DeferringLoader(Loader):
    def __init__(self, real: Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return Deferred(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        # Runs later, on first use: the module's spec and loader are the real ones from now.
        module.__loader__ = self.real
        if module.__spec__ is not None:
            module.__spec__.loader = self.real


class _AfterLoader(Loader):
    """Runs ``after(module)`` once the real loader has run the module."""

    def __init__(self, real: Loader,
                 after: Callable[[types.ModuleType], None]) -> None:
        self.real = real
        self.after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__loader__ = self.real
        if module.__spec__ is not None:
            module.__spec__.loader = self.real
        self.real.exec_module(module)
        self.after(module)


def _dnspython_without_quic(features: types.ModuleType) -> None:
    features.force("doq", False)  # dnspython: DNS over QUIC needs aioquic, which looks absent


_AFTER: dict[str, Callable[[types.ModuleType], None]] = {"dns._features": _dnspython_without_quic}
"""Modules set up right after they run, whenever that is."""


class _Loader(Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _Finder(_FinderBase):
    def __init__(self, prefixes: Sequence[str], absent: Sequence[str],
                 deferred: Sequence[str] = ()) -> None:
        self.prefixes = tuple(prefixes)
        self.absent = tuple(absent)
        self.deferred = frozenset(deferred)

    def covers(self, name: str) -> bool:
        return _under(name, self.prefixes)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if _under(fullname, self.absent):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (strangers.lean_imports)", name=fullname
            )
        if self.covers(fullname):
            return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)
        if fullname in self.deferred or fullname in _AFTER:
            spec = self._real_spec(fullname, path, target)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            if fullname in _AFTER:
                spec.loader = _AfterLoader(spec.loader, _AFTER[fullname])
            else:
                spec.loader = _DeferringLoader(spec.loader)
            return spec
        return None

    def _real_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None,
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def installed() -> bool:
    return any(isinstance(f, _Finder) for f in sys.meta_path)


def install(prefixes: Sequence[str] = UNUSED, absent: Sequence[str] = ABSENT,
            deferred: Sequence[str] = DEFERRED) -> bool:
    """Answer ``prefixes`` with stand-ins and defer ``deferred`` from now on; True if it took effect.

    Does nothing (False) if ``STRANGERS_FULL_LIBP2P=1``, or if py-libp2p or a
    package of ``absent`` was imported already (this process would then hold
    real and stand-in classes side by side).
    """
    if os.environ.get(FULL_ENV, "") not in ("", "0"):
        return False
    if installed():
        return True
    if "libp2p" in sys.modules or any(_under(m, absent) for m in sys.modules):
        return False
    if any(name in sys.modules for name in deferred):
        deferred = ()  # already run: deferring the rest would change nothing that matters
    sys.meta_path.insert(0, _Finder(prefixes, absent, deferred))
    features = sys.modules.get("dns._features")
    if features is not None:
        _dnspython_without_quic(features)
    return True
