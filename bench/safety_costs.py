"""Costs of reports, lists and filters (issue 10 items 3, 4, 7), printed as JSON.

    .venv/bin/python bench/safety_costs.py [--rounds N]

Franking a text and checking it (every text of a chat pays both), building and
verifying a report of 200 texts, signing and decoding a list record of 2000
peers, and the link/contact detection on a typical message.  Pure code only:
no network; figures are per operation, the median of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.franking import frank, verify_franking
from strangers.crypto.peerid import ed25519_peer_id, peer_id_to_text
from strangers.discovery.listrecord import ListEntry, decode_record, sign_record
from strangers.safety.filters import WordFilter, contact_warnings
from strangers.safety.report import ReportedText, build_report, verify_report

TEXT = "hey, how old are you? add me on snap: cool_guy or call 555 123 4567"


def timed(function, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    match_id = os.urandom(16)
    franking = frank(key, os.urandom, match_id, 1, TEXT)
    texts = [ReportedText(seq, seq, TEXT, frank(key, os.urandom, match_id, seq, TEXT))
             for seq in range(1, 201)]
    report = build_report(reporter=key, stranger_key=public, match_id=match_id, texts=texts,
                          reason="x", created=0)
    entries = [ListEntry(peer_id_to_text(ed25519_peer_id(os.urandom(32))), "spam")
               for _ in range(2000)]
    record = sign_record(key, 1, "school", entries)
    words = WordFilter(["idiot", "send nudes", *(f"word{n}" for n in range(500))])
    cases = {
        "frank_text_us": (lambda: frank(key, os.urandom, match_id, 1, TEXT), 500, 1e6),
        "verify_franking_us": (lambda: verify_franking(public, match_id, 1, TEXT, franking),
                               500, 1e6),
        "build_report_200_ms": (lambda: build_report(reporter=key, stranger_key=public,
                                                     match_id=match_id, texts=texts,
                                                     reason="x", created=0), 5, 1e3),
        "verify_report_200_ms": (lambda: verify_report(report), 3, 1e3),
        "sign_list_2000_ms": (lambda: sign_record(key, 1, "school", entries), 3, 1e3),
        "decode_list_2000_ms": (lambda: decode_record(record, public), 3, 1e3),
        "contact_warnings_us": (lambda: contact_warnings(TEXT), 500, 1e6),
        "word_filter_500_words_us": (lambda: words.matches(TEXT), 500, 1e6),
    }
    result = {name: round(statistics.median(timed(function, repeat) for _ in range(rounds))
                          * scale, 2)
              for name, (function, repeat, scale) in cases.items()}
    result["list_record_2000_bytes"] = len(record)
    result["franking_bytes_per_text"] = 102
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
