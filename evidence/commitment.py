"""Salted commitments for personal data (个人信息保护).

A leaf never carries a party's name, ID number, phone or address in clear, only
``SHA-256("sifa-commit/1" 0x00 salt value)``: a 32-byte random salt per value
keeps a guessable value (a phone number) from being found by trying them all.
Whoever is shown the value and its salt can check the commitment in the leaf.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

from ledger.errors import SifaError

DOMAIN = b"sifa-commit/1\x00"
SALT_BYTES = 32
# The fields of a dossier event that hold party records: in a leaf they are only commitments.
PERSONAL_RECORDS = frozenset({"parties", "submitter", "recipient"})


class DisclosureError(SifaError):
    code = "disclosure_mismatch"


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def commit(value: str, salt: bytes) -> str:
    """The hex commitment to a value (NFC-normalised UTF-8) under ``salt``."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt has {SALT_BYTES} bytes")
    data = unicodedata.normalize("NFC", value).encode("utf-8")
    return hashlib.sha256(DOMAIN + salt + data).hexdigest()


def verify_disclosure(commitment: str, value: str, salt: bytes) -> None:
    """Return None when ``value`` and ``salt`` open ``commitment``; raise DisclosureError."""
    if len(salt) != SALT_BYTES or not hmac.compare_digest(commit(value, salt), commitment):
        raise DisclosureError("the disclosed value does not open the commitment in the leaf")
