"""C2SP tlog-cosignature (Ed25519): a witness's timestamped statement that it saw a checkpoint.

    SPEC: c2sp.org/tlog-cosignature
    key ID    = SHA-256(name || "\n" || 0x04 || 32-byte Ed25519 public key)[:4]
    signature = u64 timestamp (big-endian) || Ed25519 signature            (72 bytes)
    message   = "cosignature/v1\n" "time " <timestamp, decimal> "\n" <the whole note body>
    vkey      = name "+" hex(key ID) "+" base64(0x04 || public key)

A cosignature is a signature line on the checkpoint note like the log's own; verifiers tell them
apart by name and key ID. ``quorum`` counts the distinct trusted witnesses whose line verifies.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import nacl.exceptions
import nacl.signing

from ledger.errors import CheckpointSignatureError, MalformedNoteError, VerificationError
from ledger.note import Note, NoteSignature, format_key, key_id, parse_key, valid_key_name

COSIGNATURE: Final = 0x04  # SPEC: "signature type 0x04"
MAX_TIME: Final = (1 << 63) - 1  # SPEC: "It MUST NOT exceed 2^63 - 1"


class QuorumError(VerificationError):
    """Fewer trusted witnesses cosigned the checkpoint than the trust policy requires."""

    code = "witness_quorum_missing"


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a witness signs: header line, time line, then the checkpoint note's whole body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's named Ed25519 public key (signature type 0x04)."""

    name: str
    public_key: bytes
    not_before: int = 0  # the window (Unix seconds) in which its cosignatures count (docs/keys.md)
    not_after: int | None = None

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise MalformedNoteError(f"invalid witness key name {self.name!r}")
        if len(self.public_key) != 32:
            raise MalformedNoteError("an Ed25519 public key has 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, COSIGNATURE, self.public_key)

    def vkey(self) -> str:
        return format_key(self.name, self.key_id, COSIGNATURE, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse a witness verifier key string. Raises MalformedNoteError."""
        name, hex_id, key = parse_key(vkey, COSIGNATURE, "witness verifier key")
        verifier = cls(name, key)
        if hex_id != verifier.key_id.hex():
            raise MalformedNoteError(f"witness key {name}: key ID {hex_id} does not match the key")
        return verifier

    def timestamp(self, body: str, signature: bytes) -> int | None:
        """The cosignature's time if it verifies over ``body``, else None."""
        if len(signature) != 72:
            return None
        (when,) = struct.unpack(">Q", signature[:8])
        if when > MAX_TIME:
            return None
        try:
            nacl.signing.VerifyKey(self.public_key).verify(cosigned_message(body, when), signature[8:])
        except (nacl.exceptions.BadSignatureError, ValueError):
            return None
        return int(when)


class CosignatureSigner:
    """A witness's signing key."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.verifier = CosignatureVerifier(name, bytes(self._key.verify_key))
        self.name, self.key_id = name, self.verifier.key_id

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        return cls(name, bytes(nacl.signing.SigningKey.generate()))

    def skey(self) -> str:
        return format_key(self.name, self.key_id, COSIGNATURE, bytes(self._key), private=True)

    @classmethod
    def from_skey(cls, skey: str) -> CosignatureSigner:
        name, hex_id, seed = parse_key(skey, COSIGNATURE, "witness private key", private=True)
        signer = cls(name, seed)
        if hex_id != signer.key_id.hex():
            raise MalformedNoteError("private key: key ID does not match the key")
        return signer

    def cosign(self, body: str, timestamp: int) -> NoteSignature:
        """The signature line for a checkpoint note body, as of ``timestamp`` (POSIX seconds)."""
        if not 0 <= timestamp <= MAX_TIME:
            raise MalformedNoteError("a cosignature time is a POSIX timestamp below 2^63")
        sig = bytes(self._key.sign(cosigned_message(body, timestamp)).signature)
        return NoteSignature(self.name, self.key_id, struct.pack(">Q", timestamp) + sig)


def cosigners(note: Note, witnesses: Sequence[CosignatureVerifier]) -> dict[str, int]:
    """Trusted witnesses whose cosignature on the note verifies, with its time.

    Lines of unknown keys are ignored; a trusted key's line that does not verify is an attack
    and raises CheckpointSignatureError.
    """
    found: dict[str, int] = {}
    for sig in note.signatures:
        for w in witnesses:
            if w.name == sig.name and hmac.compare_digest(w.key_id, sig.key_id):
                when = w.timestamp(note.text, sig.signature)
                if when is None:
                    raise CheckpointSignatureError(f"the cosignature of witness {w.name} does not verify")
                if when < w.not_before or (w.not_after is not None and when > w.not_after):
                    continue  # a rotated witness key: outside its window it vouches for nothing
                found[w.name] = when
    return found


def require_quorum(note: Note, witnesses: Sequence[CosignatureVerifier], quorum: int) -> dict[str, int]:
    """``cosigners`` if at least ``quorum`` trusted witnesses cosigned, else QuorumError naming who is missing."""
    found = cosigners(note, witnesses)
    if len(found) < quorum:
        missing = sorted({w.name for w in witnesses if w.name not in found})
        raise QuorumError(f"{len(found)} of the {quorum} witness cosignatures required; missing: {', '.join(missing)}")
    return found
