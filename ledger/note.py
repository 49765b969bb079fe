"""C2SP signed-note: text signed by one or more named Ed25519 keys.

    SPEC: c2sp.org/signed-note
    note      = text "\n" 1*signature-line
    signature = "— " key-name " " base64(key-id[4] || signature) "\n"
    key ID    = SHA-256(key name || 0x0A || signature type || public key)[:4]
    vkey      = key name "+" hex(key ID) "+" base64(signature type || public key)

The signer is an interface (``Signer``/``Verifier``) so that an SM2 signer can
join later with its own signature type byte, without changing the format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import nacl.exceptions
import nacl.signing

from ledger.errors import CheckpointSignatureError, MalformedNoteError, UnknownKeyError

ED25519: Final = 0x01  # SPEC: c2sp.org/signed-note "0x01 … Ed25519"
SIG_PREFIX: Final = "\u2014 "  # em dash, space
MAX_SIGNATURES: Final = 100  # SPEC: "MAY … reject notes with more than 100 signatures"
MAX_NOTE_BYTES: Final = 1 << 20


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID the signed-note spec derives for a named key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def valid_key_name(name: str) -> bool:
    # SPEC: "non-empty, well-formed UTF-8 containing neither Unicode spaces nor plus (U+002B)"
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedNoteError(f"{what} is not standard base64") from exc


def format_key(name: str, kid: bytes, sig_type: int, key: bytes, *, private: bool = False) -> str:
    """``name+hexkeyid+base64(type||key)`` (a verifier key), or with ``PRIVATE+KEY+`` and the seed."""
    encoded = base64.b64encode(bytes([sig_type]) + key).decode()
    return f"{'PRIVATE+KEY+' if private else ''}{name}+{kid.hex()}+{encoded}"


def parse_key(text: str, sig_type: int, what: str, *, private: bool = False) -> tuple[str, str, bytes]:
    """(name, hex key ID as written, 32-byte key) of a key string of ``sig_type``. Raises MalformedNoteError;
    the caller checks the key ID against the key it derives."""
    parts = text.strip().split("+", 4 if private else 2)  # base64 may hold "+"
    if private:
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise MalformedNoteError(f"a {what} is PRIVATE+KEY+name+keyid+key")
        parts = parts[2:]
    if len(parts) != 3:
        raise MalformedNoteError(f"a {what} is name+keyid+key")
    raw = _b64decode(parts[2], what)
    if len(raw) != 33 or raw[0] != sig_type:
        raise MalformedNoteError(f"{what} is not of signature type 0x{sig_type:02x} with a 32-byte key")
    return parts[0], parts[1], raw[1:]


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: who signed (name + key ID) and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{SIG_PREFIX}{self.name} {blob}\n"


class Verifier(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> bool: ...


class Signer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    """A named Ed25519 public key, as a C2SP verifier key string describes it."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise MalformedNoteError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise MalformedNoteError("an Ed25519 public key has 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, ED25519, self.public_key)

    def vkey(self) -> str:
        """The verifier key string ``name+hexid+base64(0x01||pubkey)``."""
        return format_key(self.name, self.key_id, ED25519, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse a verifier key string. Raises MalformedNoteError."""
        name, hex_id, key = parse_key(vkey, ED25519, "verifier key")
        verifier = cls(name, key)
        if hex_id != verifier.key_id.hex():
            raise MalformedNoteError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True


class Ed25519Signer:
    """A named Ed25519 signing key (PyNaCl)."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.verifier = Ed25519Verifier(name, bytes(self._key.verify_key))
        self.name = name
        self.key_id = self.verifier.key_id

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, bytes(nacl.signing.SigningKey.generate()))

    def skey(self) -> str:
        """The private key string ``PRIVATE+KEY+name+hexid+base64(0x01||seed)``."""
        return format_key(self.name, self.key_id, ED25519, bytes(self._key), private=True)

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Parse a private key string. Raises MalformedNoteError."""
        name, hex_id, seed = parse_key(skey, ED25519, "private key", private=True)
        signer = cls(name, seed)
        if hex_id != signer.key_id.hex():
            raise MalformedNoteError("private key: key ID does not match the key")
        return signer

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    if any((ord(c) < 0x20 and c != "\n") or c == "\x7f" for c in text):
        raise MalformedNoteError("note text holds a control character")


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text and its signature lines, verified or not."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def from_text(cls, note: str | bytes) -> Note:
        """Parse a signed note. Raises MalformedNoteError; checks no signature."""
        if isinstance(note, bytes):
            if len(note) > MAX_NOTE_BYTES:
                raise MalformedNoteError("note is larger than 1 MiB")
            try:
                note = note.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedNoteError("note is not UTF-8") from exc
        if len(note) > MAX_NOTE_BYTES:
            raise MalformedNoteError("note is larger than 1 MiB")
        # SPEC: the signatures follow the last blank line.
        split = note.rfind("\n\n")
        if split < 0:
            raise MalformedNoteError("note has no blank line before its signatures")
        text, sig_block = note[: split + 1], note[split + 2 :]
        _check_text(text)
        if not sig_block.endswith("\n"):
            raise MalformedNoteError("note does not end with a newline")
        lines = sig_block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")
        sigs = []
        for line in lines:
            if not line.startswith(SIG_PREFIX):
                raise MalformedNoteError("a signature line must start with an em dash and a space")
            fields = line[len(SIG_PREFIX) :].split(" ")
            if len(fields) != 2 or not valid_key_name(fields[0]):
                raise MalformedNoteError("a signature line is '— name base64'")
            raw = _b64decode(fields[1], f"signature of {fields[0]}")
            if len(raw) < 5:
                raise MalformedNoteError(f"signature of {fields[0]} is too short")
            sigs.append(NoteSignature(fields[0], raw[:4], raw[4:]))
        return cls(text, tuple(sigs))


def sign_note(text: str, signers: Iterable[Signer]) -> Note:
    """Sign ``text`` with each signer. Raises MalformedNoteError for bad text."""
    _check_text(text)
    message = text.encode()
    return Note(text, tuple(NoteSignature(s.name, s.key_id, s.sign(message)) for s in signers))


def add_signatures(note: Note, signatures: Iterable[NoteSignature]) -> Note:
    """The note with more signature lines, keeping one line per (name, key ID)."""
    seen = {(s.name, s.key_id) for s in note.signatures}
    extra = []
    for s in signatures:
        if (s.name, s.key_id) not in seen:
            seen.add((s.name, s.key_id))
            extra.append(s)
    return Note(note.text, note.signatures + tuple(extra))


def verified_by(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """The known verifiers whose signature on the note is valid.

    Lines of unknown keys are ignored (SPEC: "MUST ignore signatures from
    unknown keys"). Raises CheckpointSignatureError when a known key's line does
    not verify — a forged line is an attack, not noise — and UnknownKeyError
    when no known key signed at all.
    """
    message = note.text.encode()
    good: list[Verifier] = []
    for sig in note.signatures:
        for v in verifiers:
            if v.name == sig.name and hmac.compare_digest(v.key_id, sig.key_id):
                if not v.verify(message, sig.signature):
                    raise CheckpointSignatureError(
                        f"the signature of {sig.name} (key {sig.key_id.hex()}) does not verify over this note"
                    )
                if v not in good:
                    good.append(v)
    if not good:
        names = ", ".join(sorted({s.name for s in note.signatures})) or "nobody"
        raise UnknownKeyError(f"the note is signed by no trusted key (signed by: {names})")
    return good
