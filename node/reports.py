"""Report files: the last stranger's franked texts, signed by us, kept in the data directory.

The report itself is pure (:mod:`strangers.safety.report`); this module takes
the evidence the chat kept (:attr:`ChatConnection.evidence`), the clock and
the file system.  A report goes to ``<data dir>/reports/`` (the directory 0700,
the file 0600, written atomically) and never leaves this computer unless the
user sends it on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strangers.crypto.session import ChatConnection
from strangers.errors import ConfigError, LocalProtocolError
from strangers.safety.report import ReportedText, ReportError, build_report, verify_report

from .store import DataDir, write_private

__all__ = ["MAX_REPORT_FILE", "REPORTS_DIR", "load_report", "save_report", "write_report"]

REPORTS_DIR = "reports"
MAX_REPORT_FILE = 64 * 1024 * 1024
"""A bound on a report file read back (1000 texts of 16 KiB, in JSON, fit)."""


def write_report(connection: ChatConnection | None, identity: Ed25519PrivateKey, reason: str,
                 *, data: DataDir | None = None, now: float | None = None) -> Path:
    """Build, sign and save the report of the stranger of ``connection``; its path.

    Raises :class:`~strangers.errors.LocalProtocolError` when there is no chat to
    report, :class:`~strangers.errors.ConfigError` when the file cannot be written.
    """
    if connection is None:
        raise LocalProtocolError("there is no stranger to report yet (report during or after a chat)")
    created = int(time.time() if now is None else now)
    texts = [ReportedText(item.seq, item.id, item.text, item.franking)
             for item in connection.evidence]
    document = build_report(reporter=identity, stranger_key=connection.remote_identity,
                            match_id=connection.match_id, texts=texts, reason=reason,
                            created=created)
    stranger = document["stranger"]["peer_id"]
    return save_report(document, f"report-{created}-{stranger[-8:]}.json", data=data)


def save_report(document: dict[str, Any], name: str, *, data: DataDir | None = None) -> Path:
    """Write ``document`` as ``reports/<name>`` (a fresh name if it exists): its path."""
    root = (data if data is not None else DataDir()).root / REPORTS_DIR
    body = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = root / name
        counter = 1
        while path.exists():
            counter += 1
            path = root / f"{Path(name).stem}-{counter}.json"
        write_private(path, body + b"\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the report in {root}: {exc.strerror or exc}") from None
    return path


def load_report(path: Path) -> object:
    """The JSON document in ``path``; :class:`ReportError` when it cannot be one."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_REPORT_FILE + 1)
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_REPORT_FILE:
        raise ReportError(f"{path} is larger than {MAX_REPORT_FILE} bytes: not a report")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportError(f"{path} is not JSON: {exc}") from None


def verify_report_file(path: Path):
    """Load and verify the report in ``path`` (:class:`ReportError` says why not)."""
    return verify_report(load_report(path))
