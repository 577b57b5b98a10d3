"""Reports with proof (safety/report.py): intact ones verify; edits, additions, removals do not."""

from __future__ import annotations

import copy
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.franking import frank
from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.safety.report import (
    REPORT_LABEL,
    ReportedText,
    ReportError,
    build_report,
    canonical,
    verify_report,
)

STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
REPORTER = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
MATCH = bytes(range(16))
TEXTS = ["hi", "how old are you?", "send me a photo", "add me on snap: xx_yy", "ok bye"]


def franked(first: int = 1, texts: list[str] = TEXTS, sender=STRANGER) -> list[ReportedText]:
    rng = random.Random(7).randbytes
    return [ReportedText(seq, seq * 2, text, frank(sender, rng, MATCH, seq, text))
            for seq, text in enumerate(texts, start=first)]


def report(**changes) -> dict:
    args = dict(reporter=REPORTER, stranger_key=STRANGER.public_key().public_bytes_raw(),
                match_id=MATCH, texts=franked(), reason="asked my age", created=1764500000)
    return build_report(**(args | changes))


def resign(doc: dict, key=REPORTER) -> dict:
    """What a dishonest reporter can do: change the document and sign it again."""
    body = {name: value for name, value in doc.items() if name != "signature"}
    return body | {"signature": key.sign(REPORT_LABEL + canonical(body)).hex()}


def test_an_intact_report_verifies_and_says_what_it_holds() -> None:
    doc = report()
    verified = verify_report(doc)
    stranger_id = peer_id_to_text(ed25519_peer_id(STRANGER.public_key().public_bytes_raw()))
    assert verified.stranger == stranger_id == doc["stranger"]["peer_id"]
    assert [item.text for item in verified.messages] == TEXTS
    assert [item.seq for item in verified.messages] == [1, 2, 3, 4, 5]
    assert verified.reason == "asked my age" and verified.match_id == MATCH
    assert verify_report(report(texts=franked(first=40))).messages[0].seq == 40  # a later window
    assert verify_report(report(texts=[])).messages == ()


@pytest.mark.parametrize("resigned", [False, True], ids=["as-is", "re-signed"])
def test_an_edited_text_is_found(resigned: bool) -> None:
    doc = report()
    doc["messages"][2]["text"] = "send me a cat photo"
    doc = resign(doc) if resigned else doc
    with pytest.raises(ReportError, match=r"text 3 \(id 6\) was edited or added"):
        verify_report(doc)


@pytest.mark.parametrize("resigned", [False, True], ids=["as-is", "re-signed"])
def test_a_removed_text_is_found(resigned: bool) -> None:
    doc = report()
    del doc["messages"][1]
    doc = resign(doc) if resigned else doc
    with pytest.raises(ReportError, match="text 2 is missing: removed"):
        verify_report(doc)
    doc = report()
    del doc["messages"][1:3]
    with pytest.raises(ReportError, match="texts 2 to 3 are missing"):
        verify_report(resign(doc))


def test_an_added_text_is_found() -> None:
    doc = report()
    fake = franked(texts=TEXTS + ["a sentence the stranger never wrote"],
                   sender=REPORTER)[-1]
    doc["messages"].append({"seq": 6, "id": 12, "text": fake.text, "key": fake.franking.key.hex(),
                            "signature": fake.franking.signature.hex()})
    with pytest.raises(ReportError, match="text 6 .* was edited or added"):
        verify_report(resign(doc))


def test_reordered_or_duplicated_texts_are_found() -> None:
    doc = report()
    doc["messages"][1], doc["messages"][2] = doc["messages"][2], doc["messages"][1]
    with pytest.raises(ReportError, match="missing|reordered"):
        verify_report(resign(doc))
    doc = report()
    doc["messages"].insert(2, copy.deepcopy(doc["messages"][1]))
    with pytest.raises(ReportError, match="reordered or added twice"):
        verify_report(resign(doc))


@pytest.mark.parametrize("field", ["reason", "created", "match_id", "stranger"])
def test_fields_changed_after_signing_are_found(field: str) -> None:
    doc = report()
    if field == "reason":
        doc["reason"] = "nothing happened"
        expected = "changed after the reporter signed"
    elif field == "created":
        doc["created"] += 1
        expected = "changed after the reporter signed"
    elif field == "match_id":
        doc["match_id"] = bytes(16).hex()  # the texts were franked for another chat
        expected = "text 1 .* was edited"
    else:  # blame somebody else: the texts are not that peer's
        other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        doc["stranger"] = {"peer_id": peer_id_to_text(ed25519_peer_id(other)),
                           "public_key": other.hex()}
        expected = "text 1 .* was edited"
    with pytest.raises(ReportError, match=expected):
        verify_report(doc)


@pytest.mark.parametrize("mangle", [
    lambda doc: doc.pop("signature"),
    lambda doc: doc.update(extra=1),
    lambda doc: doc.update(format="strangers-report/9"),
    lambda doc: doc.update(created=-1),
    lambda doc: doc.update(created=True),
    lambda doc: doc.update(reason=5),
    lambda doc: doc.update(match_id="zz" * 16),
    lambda doc: doc.update(signature="00"),
    lambda doc: doc.update(messages={}),
    lambda doc: doc["messages"][0].update(text=""),
    lambda doc: doc["messages"][0].update(seq=0),
    lambda doc: doc["messages"][0].pop("key"),
    lambda doc: doc["stranger"].update(peer_id="12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"),
    lambda doc: doc.update(reporter=[]),
])
def test_malformed_reports_are_refused_with_a_reason(mangle) -> None:
    doc = report()
    mangle(doc)
    with pytest.raises(ReportError):
        verify_report(doc)
    with pytest.raises(ReportError):
        verify_report([doc])
