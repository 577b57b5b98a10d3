"""A tiny authoritative DNS server on 127.0.0.1 for tests (TXT records only; port 0).

``async with serving_dns({"_dnsaddr.example.test": ["dnsaddr=/ip4/..."]}) as dns:``
gives ``dns.port``, ``dns.queries`` (the names asked, in order) and ``dns.resolver()``
(a dnspython resolver pointed at it). Unknown names answer NXDOMAIN; names in
``silent`` are never answered (a server that times out).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio


@dataclass
class FakeDNS:
    records: dict[str, list[str]]
    silent: set[str] = field(default_factory=set)
    port: int = 0
    queries: list[str] = field(default_factory=list)

    def resolver(self, lifetime: float = 2.0) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = lifetime
        return resolver

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True)
        self.queries.append(name)
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        texts = self.records.get(name)
        if texts is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            quoted = ['"' + text.replace('"', '\\"') + '"' for text in texts]
            response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN,
                                                       dns.rdatatype.TXT, *quoted))
        return response.to_wire()


@asynccontextmanager
async def serving_dns(records: dict[str, list[str]], silent: set[str] | None = None):
    server = FakeDNS(records, silent or set())
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    server.port = sock.getsockname()[1]

    async def serve() -> None:
        while True:
            wire, peer = await sock.recvfrom(4096)
            reply = server.answer(wire)
            if reply is not None:
                await sock.sendto(reply, peer)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
            sock.close()
