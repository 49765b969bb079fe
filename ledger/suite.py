"""A log's cryptographic suite: its tree hash and its checkpoint signature, fixed when the log is made.

    suite   hash     signature                      log key type (c2sp.org/signed-note)
    sha256  SHA-256  Ed25519                        0x01
    gm      SM3      SM2 with SM3, ID 1234567812345678  0xff || OID 1.2.156.10197.1.501 (ledger.note.SM2_SM3)

The log key names the suite: whoever trusts a log's key knows how its tree hashes, so a verifier
takes the hasher from the trusted key, never from what a receipt or a package claims
(``hasher_for_log``). The node config, the trust entry and every receipt name the suite too; each
is checked against the key (docs/gm.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ledger.errors import MalformedNoteError
from ledger.gm import SM2Verifier
from ledger.hashing import SHA256, Hasher, hasher_named
from ledger.note import SM2_SM3, Verifier


@dataclass(frozen=True, slots=True)
class Suite:
    """A named pair of tree hash and checkpoint signature algorithm."""

    name: str
    hash: str
    signature: str

    def hasher(self) -> Hasher:
        """The suite's tree hasher. Raises KeyError when SM3 is unavailable (no OpenSSL SM3, no gm extra)."""
        return hasher_named(self.hash)


SHA256_ED25519: Final = Suite("sha256", "sha256", "ed25519")
GM: Final = Suite("gm", "sm3", "sm2")
SUITES: Final = {s.name: s for s in (SHA256_ED25519, GM)}


def suite_named(name: str) -> Suite:
    """The suite a configuration or trust entry names. Raises MalformedNoteError for another name."""
    try:
        return SUITES[name]
    except KeyError:
        raise MalformedNoteError(f"unknown crypto suite {name!r}; known: {', '.join(SUITES)}") from None


def suite_of_algorithms(hash_name: str, signature: str) -> Suite | None:
    """The suite a receipt's ``log.hash`` and ``log.signature`` name, or None for no known pair."""
    return next((s for s in SUITES.values() if (s.hash, s.signature) == (hash_name, signature)), None)


def suite_of_hasher(hasher: Hasher) -> Suite:
    """The suite whose tree hash ``hasher`` is."""
    return GM if hasher.name == GM.hash else SHA256_ED25519


def suite_of_key(key: Verifier) -> Suite:
    """The suite a log key names by its signature type (SM2 -> gm, Ed25519 -> sha256)."""
    return GM if isinstance(key, SM2Verifier) else SHA256_ED25519


def suite_of_vkey_type(prefix: bytes) -> Suite:
    """The suite of a log key's signature type prefix (``ledger.note.key_type``)."""
    return GM if prefix == SM2_SM3 else SHA256_ED25519


def hasher_for_log(origin: str, log_keys: Sequence[Verifier]) -> Hasher:
    """The tree hasher of the log ``origin`` as its trusted key names it; SHA-256 when no trusted key
    is named ``origin`` (the signature check then refuses the checkpoint anyway).

    Raises MalformedNoteError when trusted keys of the origin disagree on the suite.
    """
    suites = {suite_of_key(k) for k in log_keys if k.name == origin}
    if len(suites) > 1:
        raise MalformedNoteError(f"the trusted keys of {origin} are of different crypto suites")
    if not suites:
        return SHA256
    try:
        return suites.pop().hasher()
    except KeyError as exc:
        raise MalformedNoteError(str(exc.args[0])) from exc
