"""The trust file (``sifa-trust/1``, docs/trust.md): which log keys and witnesses to believe.

One parser for the lawyer's verifier and for a node (which also reads each witness's ``url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import boundedjson
from ledger.cosignature import CosignatureVerifier
from ledger.errors import MalformedError
from ledger.evm import ChainTrust
from ledger.keys import WindowedKey
from ledger.note import Ed25519Verifier, Verifier, verifier_from_vkey
from ledger.suite import suite_named, suite_of_key

FORMAT = "sifa-trust/1"


class MalformedTrustError(MalformedError):
    code = "malformed_trust_file"


@dataclass(frozen=True)
class Trust:
    """Log keys (Ed25519, or SM2 for a GM log), witness keys, and how many witnesses must cosign; ``urls``
    by witness name, ``log_urls`` by log origin (a peer court's node, for node-to-node requests)."""

    logs: list[Verifier]
    witnesses: list[CosignatureVerifier] = field(default_factory=list)
    quorum: int = 0
    urls: dict[str, str] = field(default_factory=dict)
    log_urls: dict[str, str] = field(default_factory=dict)
    tsa: list[str] = field(default_factory=list)  # RFC 3161 TSA certificates (PEM) a token may chain to
    chains: dict[str, ChainTrust] = field(default_factory=dict)  # by log origin: where it anchors (ledger/evm.py)


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
        for key, entry in zip(logs, log_entries, strict=True):
            # The entry may name the log's crypto suite (docs/gm.md); it must be the one its key names.
            if "crypto" in entry and suite_named(entry["crypto"]) != suite_of_key(key):
                raise ValueError(
                    f"log {key.name}: the entry names crypto {entry['crypto']!r}, its key is {suite_of_key(key).name}"
                )
        suites: dict[str, set[str]] = {}
        for key in logs:
            suites.setdefault(key.name, set()).add(suite_of_key(key).name)
        for name, named in suites.items():
            # A log signs with one suite: keys of two for one origin leave its tree hash undecided.
            if len(named) > 1:
                raise ValueError(f"log {name}: keys of two crypto suites ({', '.join(sorted(named))}); a log "
                                 "signs with one")  # fmt: skip
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


def _log_key(entry: dict[str, Any]) -> Verifier:
    """A log key; with a window (docs/keys.md) when the entry names one: ``from_size``, and
    ``until_size`` or ``compromised_from`` (checkpoints beyond it are refused). Windows are for Ed25519
    log keys (key history on a 国密 log is not built yet)."""
    key = verifier_from_vkey(entry["key"])
    first, until, compromised = (
        _whole(entry, "from_size"),
        _whole(entry, "until_size"),
        _whole(entry, "compromised_from"),
    )
    if first is None and until is None and compromised is None:
        return key
    if until is not None and compromised is not None:
        raise ValueError("a log key has until_size or compromised_from, not both")
    if not isinstance(key, Ed25519Verifier):
        raise ValueError(f"log {key.name}: key windows are for Ed25519 log keys")
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
        doc = boundedjson.load_path(path)  # nesting and size bounded: never a RecursionError
    except (OSError, ValueError) as exc:
        raise MalformedTrustError(f"{exc}") from exc
    return parse_trust(doc)
