"""The trust file (``sifa-trust/1``, docs/trust.md): which log keys and witnesses to believe.

One parser for the lawyer's verifier and for a node (which also reads each witness's ``url``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.cosignature import CosignatureVerifier
from ledger.errors import MalformedError
from ledger.note import Ed25519Verifier

FORMAT = "sifa-trust/1"


class MalformedTrustError(MalformedError):
    code = "malformed_trust_file"


@dataclass(frozen=True)
class Trust:
    """Log keys, witness keys, and how many witnesses must cosign; ``urls`` by witness name,
    ``log_urls`` by log origin (a peer court's node, for node-to-node requests)."""

    logs: list[Ed25519Verifier]
    witnesses: list[CosignatureVerifier] = field(default_factory=list)
    quorum: int = 0
    urls: dict[str, str] = field(default_factory=dict)
    log_urls: dict[str, str] = field(default_factory=dict)
    tsa: list[str] = field(default_factory=list)  # RFC 3161 TSA certificates (PEM) a token may chain to


def parse_trust(doc: Any) -> Trust:
    """A trust file's JSON value. Raises MalformedTrustError."""
    try:
        if doc.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unknown trust file format {doc.get('format')!r}")
        log_entries = doc.get("logs", [])
        logs = [Ed25519Verifier.from_vkey(entry["key"]) for entry in log_entries]
        log_urls = {v.name: str(e["url"]) for v, e in zip(logs, log_entries, strict=True) if e.get("url")}
        entries = doc.get("witnesses", [])
        witnesses = [CosignatureVerifier.from_vkey(entry["key"]) for entry in entries]
        urls = {w.name: str(e["url"]) for w, e in zip(witnesses, entries, strict=True) if e.get("url")}
        quorum = doc.get("quorum", 0)
        if type(quorum) is not int or not 0 <= quorum <= len(witnesses):
            raise ValueError(f"quorum must be a whole number from 0 to the {len(witnesses)} witnesses named")
        if len({w.name for w in witnesses}) != len(witnesses):
            raise ValueError("a witness is named twice")
        tsa = [str(e["certificate"]) for e in doc.get("tsa", [])]
        if not all(c.lstrip().startswith("-----BEGIN CERTIFICATE-----") for c in tsa):
            raise ValueError("a tsa entry's certificate is PEM (-----BEGIN CERTIFICATE-----)")
    except (ValueError, KeyError, TypeError, AttributeError, MalformedError) as exc:
        raise MalformedTrustError(f"{exc}") from exc
    return Trust(logs, witnesses, quorum, urls, log_urls, tsa)


def read_trust(path: Path) -> Trust:
    """A trust file from disk. Raises MalformedTrustError (unreadable or malformed)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MalformedTrustError(f"{exc}") from exc
    return parse_trust(doc)
