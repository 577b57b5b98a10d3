"""The executable's lean start-up (``strangers.lean_imports``): left out, and never missed.

Each check runs in a fresh interpreter: this test process imported all of
py-libp2p long ago, so here ``install`` must (and does) refuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

from strangers import lean_imports

LEFT_OUT = ("aioquic", "requests", "httpx", "urllib3", "wsproto", "trio_websocket",
            "service_identity", "OpenSSL", "cffi", "pycparser", "zeroconf", "pytest")
"""``zeroconf`` is imported after ``ready`` (our mDNS service), never by py-libp2p's own;
``pytest`` comes with ``trio.testing``, which the node must not import (~0.1 s)."""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != lean_imports.FULL_ENV}
    environment.update(env)
    # Not from the checkout's root: its strangers/ directory would shadow the package.
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=environment, cwd=tempfile.gettempdir(),
    )


def test_a_lean_host_carries_a_stream_without_the_left_out() -> None:
    result = run_python(f"""
        import sys
        from strangers import lean_imports
        assert lean_imports.install()
        import trio
        from multiaddr import Multiaddr
        from strangers.node.identity import fresh_identity
        from strangers.node.libp2p.host import build_host, running_host
        from libp2p.peer.peerinfo import PeerInfo

        async def main():
            a, b = build_host(fresh_identity()), build_host(fresh_identity())
            async def echo(stream):
                await stream.write(await stream.read(5))
                await stream.close()
            b.set_stream_handler("/strangers/echo/1.0.0", echo)
            loopback = [Multiaddr("/ip4/127.0.0.1/tcp/0")]
            async with running_host(a, loopback), running_host(b, loopback):
                await a.connect(PeerInfo(b.get_id(), b.get_addrs()))
                stream = await a.new_stream(b.get_id(), ["/strangers/echo/1.0.0"])
                await stream.write(b"hello")
                print("echo", (await stream.read(5)).decode())

        trio.run(main)
        print("loaded", sorted(m for m in {LEFT_OUT!r} if m in sys.modules))
        print("stand-in", type(sys.modules["libp2p.transport.quic"]).__name__)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "echo hello" in lines
    assert "loaded []" in lines
    assert "stand-in StandIn" in lines


def test_rsa_keys_of_public_peers_still_work_without_cffi() -> None:
    """pycryptodome's ctypes binding, its fallback when ``cffi`` is absent, signs and verifies
    py-libp2p's RSA keys (the public bootstrap peers' ``Qm...`` ids) and their peer ids."""
    result = run_python("""
        import sys
        from strangers import lean_imports
        assert lean_imports.install()
        from libp2p.crypto.rsa import create_new_key_pair
        from libp2p.crypto.serialization import deserialize_public_key
        from libp2p.peer.id import ID
        from Crypto.Util import _raw_api
        pair = create_new_key_pair(2048)
        signature = pair.private_key.sign(b"hello")
        public = deserialize_public_key(pair.public_key.serialize())
        print("verified", public.verify(b"hello", signature), public.verify(b"other", signature))
        print("peer id", ID.from_pubkey(public).to_base58().startswith("Qm"))
        print("backend", _raw_api.backend, "cffi" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["verified True False", "peer id True", "backend ctypes False"]


def test_a_stand_in_refuses_use_and_matches_nothing() -> None:
    result = run_python("""
        from strangers import lean_imports
        assert lean_imports.install()
        from libp2p.transport.quic.transport import QUICTransport
        from libp2p.transport.quic.exceptions import QUICStreamClosedError
        try:
            QUICTransport(None)
        except lean_imports.NotLoaded as exc:
            print("refused", "libp2p.transport.quic.transport.QUICTransport" in str(exc))
        try:
            raise ValueError("x")
        except QUICStreamClosedError:
            print("matched")
        except ValueError:
            print("not matched")
        print("isinstance", isinstance(object(), QUICTransport))
        try:
            import aioquic
        except ImportError:
            print("aioquic absent")
        import dns._features
        print("doq", dns._features.have("doq"))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "refused True", "not matched", "isinstance False", "aioquic absent", "doq False",
    ]


def test_the_full_library_is_one_variable_away() -> None:
    result = run_python("""
        import sys
        from strangers import lean_imports
        print(lean_imports.install())
        import strangers.node
        print("quic" , type(sys.modules["libp2p.transport.quic"]).__name__)
    """, **{lean_imports.FULL_ENV: "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["False", "quic module"]


def test_install_refuses_once_py_libp2p_is_imported() -> None:
    import libp2p  # noqa: F401  (this process: long since imported)

    before = list(sys.meta_path)
    assert lean_imports.install() is False
    assert sys.meta_path == before


def test_the_executable_starts_lean(tmp_path) -> None:
    executable = os.path.join(os.path.dirname(sys.executable), "strangers")
    environment = {k: v for k, v in os.environ.items() if k != lean_imports.FULL_ENV}
    environment["STRANGERS_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", executable, "chat", "--json", "--no-bootstrap",
         "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "-i", "cinema"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=environment,
    )
    assert '"event": "ready"' in result.stdout, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "libp2p.host.basic_host" in imported  # the measurement saw the node start
    # -X importtime lists an absent package's failed import too: pycparser is what cffi costs
    assert not {m for m in LEFT_OUT if m in imported and m not in lean_imports.ABSENT}


DEFERRED_WITNESSES = ("dns.message", "cryptography.x509.base")
"""Modules only the deferred ones import when they run: dnspython's resolver, x509's package."""


def test_the_deferred_modules_stay_unloaded_until_used(tmp_path) -> None:
    """A launch to ``ready`` imports the deferred modules but runs none of them."""
    executable = os.path.join(os.path.dirname(sys.executable), "strangers")
    environment = {k: v for k, v in os.environ.items() if k != lean_imports.FULL_ENV}
    environment["STRANGERS_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", executable, "chat", "--json", "--no-bootstrap",
         "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=environment,
    )
    assert '"event": "ready"' in result.stdout, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"dns.asyncresolver", "cryptography.x509"} <= imported  # imported, as before
    assert not {m for m in DEFERRED_WITNESSES if m in imported}  # never run


def test_a_deferred_module_runs_on_first_use() -> None:
    result = run_python("""
        import sys
        from strangers import lean_imports
        assert lean_imports.install()
        import dns.asyncresolver
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID  # a submodule: imported as usual
        print("deferred", type(dns.asyncresolver).__name__, type(x509).__name__,
              "dns.message" in sys.modules)
        import dns.asyncresolver as again
        print("same", again is dns.asyncresolver, type(again).__name__)
        print("runs", dns.asyncresolver.Resolver.__name__, type(dns.asyncresolver).__name__,
              "dns.message" in sys.modules)
        import dns._features
        print("doq", dns._features.have("doq"))
        print("x509", x509.DNSName.__name__, ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string)
        print("loader", type(x509.__loader__).__name__, type(x509.__spec__.loader).__name__)
        try:
            dns.asyncresolver.no_such_name
        except AttributeError as exc:
            print("missing", "no_such_name" in str(exc))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "deferred Deferred Deferred False",
        "same True Deferred",
        "runs Resolver module True",
        "doq False",
        "x509 DNSName 2.5.29.17",
        "loader SourceFileLoader SourceFileLoader",
        "missing True",
    ]
