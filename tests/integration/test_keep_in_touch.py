"""Integration: keep in touch by mutual consent, and find each other again (protocol §6.12)."""

from __future__ import annotations

import pytest
import trio
from test_node_pair import LOOPBACK, _network

from strangers.errors import LocalProtocolError
from strangers.node import events, open_node
from strangers.node.contacts import ContactBook, contact_config
from strangers.node.store import DataDir

from dhtnet import next_event


def _own_book(node, tmp_path, name):
    node.contacts = ContactBook(DataDir(tmp_path / name))
    return node.contacts


async def test_both_keep_then_they_find_each_other_again_and_nobody_else(tmp_path):
    async with _network({"interests": ("chess",)}, {"interests": ("chess",)}) as (server, (a, b)):
        book_a, book_b = _own_book(a, tmp_path, "a"), _own_book(b, tmp_path, "b")
        await next_event(a, events.Matched)
        await next_event(b, events.Matched)
        await a.keep("bob")
        await next_event(a, events.KeepOffered)
        await next_event(b, events.KeepAsked)  # b learns an offer, nothing else
        assert book_a.all() == book_b.all() == []
        with pytest.raises(LocalProtocolError, match="already offered"):
            await a.keep()
        await b.keep("alice")
        kept_a = await next_event(a, events.Kept)
        kept_b = await next_event(b, events.Kept)
        assert (kept_a.name, kept_b.name) == ("bob", "alice")
        [bob], [alice] = book_a.all(), book_b.all()
        # each holds the other's new long-term id, never the id of this chat
        assert bob.peer_id == kept_a.peer_id and alice.peer_id == kept_b.peer_id
        assert bob.peer_id not in (a.peer_id, b.peer_id) and alice.peer_id != bob.peer_id
        assert bob.secret == alice.secret and bob.rendezvous == alice.rendezvous
        assert bob.interests == ("chess",)
        boot = (server.addrs[0],)
        await a.quit()
        await b.quit()
        # Later: each runs `strangers contact NAME`; a stranger on the same network
        # who knows nothing of the secret is not matched with either.
        network = {"listen": LOOPBACK, "bootstrap": boot, "mdns": False}
        async with open_node(contact_config(bob, **network)) as finds_bob, \
                open_node(contact_config(alice, **network)) as finds_alice:
            assert finds_bob.peer_id == alice.peer_id and finds_alice.peer_id == bob.peer_id
            again_a = await next_event(finds_bob, events.Matched, timeout=30)
            again_b = await next_event(finds_alice, events.Matched, timeout=30)
            assert (again_a.contact, again_b.contact) == ("bob", "alice")
            assert again_a.common_interests == again_b.common_interests == ()
            assert again_a.safety_code == again_b.safety_code
            with pytest.raises(LocalProtocolError, match="kept contact already"):
                await finds_bob.keep()
            await finds_bob.send_text("remember me?")
            assert (await next_event(finds_alice, events.MessageReceived)).text == "remember me?"


async def test_an_offer_alone_saves_nothing_on_either_side(tmp_path):
    async with _network({"interests": ("go",)}, {"interests": ("go",)}) as (_s, (a, b)):
        book_a, book_b = _own_book(a, tmp_path, "a"), _own_book(b, tmp_path, "b")
        await next_event(a, events.Matched)
        await next_event(b, events.Matched)
        await a.keep()
        await next_event(b, events.KeepAsked)
        await b.next()  # b declines by leaving
        await next_event(a, events.StrangerLeft)
        assert book_a.all() == book_b.all() == []
        assert not (tmp_path / "a" / "contacts.json").exists()


async def test_a_contact_node_refuses_everyone_but_its_contact():
    from libp2p.peer.peerinfo import PeerInfo

    from strangers.discovery.contact import AgreedContact
    from strangers.node import fresh_identity
    from strangers.node.contacts import SavedContact
    from strangers.node.libp2p.addresses import dialable_addrs

    expected = fresh_identity().peer_id.to_base58()
    contact = SavedContact("ana", expected, 0, (), bytes(range(32)), bytes(32))
    assert AgreedContact(contact.our_key, expected, contact.secret)
    async with _network({"interests": ("x",), "interests_only": True}) as (_s, (other,)):
        async with open_node(contact_config(contact, listen=LOOPBACK, bootstrap=(), mdns=False)) as node:
            info = PeerInfo(node.identity.peer_id, dialable_addrs(node.host))
            other.stop_search()
            other.matcher.stop()
            other.matcher.start_search(trio.current_time())
            other.matcher.propose(node.identity.peer_id.to_bytes())
            with trio.fail_after(10):
                answer = await other.matching.propose(info, bytes(16), (contact.rendezvous,))
            assert answer is None  # its stream was reset: refused before a word
            assert node.chats.chats == 0
