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
from ledger.evm import ChainTrust
from ledger.keys import WindowedKey
from ledger.note import Ed25519Verifier

FORMAT = "sifa-trust/1"
MAX_DEPTH = 16  # a trust file nests three deep; json.loads recurses (RecursionError) on "[" * 200000


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
    chains: dict[str, ChainTrust] = field(default_factory=dict)  # by log origin: where it anchors (ledger/evm.py)


def _nesting(text: str) -> int:
    """How deep a JSON text's arrays and objects nest (a linear scan, strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    """``value`` if it is a list of JSON objects. Raises ValueError naming ``what``."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{what} must be a list of objects")
    return value


def parse_trust(doc: Any) -> Trust:
    """A trust file's JSON value. Raises MalformedTrustError."""
    try:
        if not isinstance(doc, dict):
            raise ValueError(f"a trust file is a JSON object, not {type(doc).__name__ if doc is not None else 'null'}")
        if doc.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unknown trust file format {doc.get('format')!r}")
        log_entries = _objects(doc.get("logs", []), "logs")
        logs = [_log_key(entry) for entry in log_entries]
        log_urls = {v.name: str(e["url"]) for v, e in zip(logs, log_entries, strict=True) if e.get("url")}
        entries = _objects(doc.get("witnesses", []), "witnesses")
        witnesses = [_witness_key(entry) for entry in entries]
        urls = {w.name: str(e["url"]) for w, e in zip(witnesses, entries, strict=True) if e.get("url")}
        quorum = doc.get("quorum", 0)
        if type(quorum) is not int or not 0 <= quorum <= len(witnesses):
            raise ValueError(f"quorum must be a whole number from 0 to the {len(witnesses)} witnesses named")
        if len({(w.name, w.key_id) for w in witnesses}) != len(witnesses):
            raise ValueError("a witness key is named twice")
        quorum_names = {w.name for w in witnesses}
        if quorum > len(quorum_names):
            raise ValueError(f"quorum must be at most the {len(quorum_names)} witnesses named")
        chains = {v.name: ChainTrust.from_dict(e["chain"]) for v, e in zip(logs, log_entries, strict=True)
                  if e.get("chain") is not None}  # fmt: skip
        tsa = [str(e["certificate"]) for e in doc.get("tsa", [])]
        if not all(c.lstrip().startswith("-----BEGIN CERTIFICATE-----") for c in tsa):
            raise ValueError("a tsa entry's certificate is PEM (-----BEGIN CERTIFICATE-----)")
    except (ValueError, KeyError, TypeError, AttributeError, MalformedError) as exc:
        raise MalformedTrustError(f"{exc}") from exc
    return Trust(logs, witnesses, quorum, urls, log_urls, tsa, chains)


def _whole(entry: dict[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if value is not None and (type(value) is not int or value < 0):
        raise ValueError(f"{key} must be a whole number")
    return value


def _log_key(entry: dict[str, Any]) -> Ed25519Verifier:
    """A log key; with a window (docs/keys.md) when the entry names one: ``from_size``, and
    ``until_size`` or ``compromised_from`` (checkpoints beyond it are refused)."""
    key = Ed25519Verifier.from_vkey(entry["key"])
    first, until, compromised = (
        _whole(entry, "from_size"),
        _whole(entry, "until_size"),
        _whole(entry, "compromised_from"),
    )
    if first is None and until is None and compromised is None:
        return key
    if until is not None and compromised is not None:
        raise ValueError("a log key has until_size or compromised_from, not both")
    last = compromised if compromised is not None else until
    return WindowedKey(
        key.name, key.public_key, first_size=first or 0, last_size=last, compromised=compromised is not None
    )


def _witness_key(entry: dict[str, Any]) -> CosignatureVerifier:
    """A witness key, with the window (Unix seconds) its cosignatures count in (docs/keys.md)."""
    key = CosignatureVerifier.from_vkey(entry["key"])
    before, after = _whole(entry, "not_before"), _whole(entry, "not_after")
    if before is None and after is None:
        return key
    return CosignatureVerifier(key.name, key.public_key, not_before=before or 0, not_after=after)


def read_trust(path: Path) -> Trust:
    """A trust file from disk. Raises MalformedTrustError (unreadable or malformed)."""
    try:
        text = path.read_text(encoding="utf-8")
        if _nesting(text) > MAX_DEPTH:
            raise ValueError(f"its JSON nests deeper than {MAX_DEPTH} levels; a trust file nests three")
        doc = json.loads(text)
    except (OSError, ValueError, RecursionError) as exc:
        raise MalformedTrustError(f"{exc}") from exc
    return parse_trust(doc)
