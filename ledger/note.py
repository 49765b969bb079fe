"""C2SP signed-note: text signed by one or more named keys (Ed25519 here, SM2 in ledger.gm).

    SPEC: c2sp.org/signed-note
    note      = text "\n" 1*signature-line
    signature = "— " key-name " " base64(key-id[4] || signature) "\n"
    key ID    = SHA-256(key name || 0x0A || signature type || public key)[:4]
    vkey      = key name "+" hex(key ID) "+" base64(signature type || public key)

The signer is an interface (``Signer``/``Verifier``); Ed25519 lives here, SM2
(国密) in ``ledger.gm`` under its own signature type, without changing the format.
A signature type is the type byte and, for 0xff, the identifier after it
(``SIGNATURE_TYPES``); ``verifier_from_vkey``/``signer_from_skey`` pick the class.
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
# SPEC: c2sp.org/signed-note "0xff — Reserved for signature types without an identifier byte assigned by
# this specification. It is RECOMMENDED that this byte be followed by a longer identifier that is unlikely
# to collide." Ours is the DER encoding of the registered OID of SM2-with-SM3, 1.2.156.10197.1.501
# (GM/T 0006), self-delimiting and unique by construction. docs/gm.md says why.
SM2_OID_DER: Final = bytes.fromhex("06082a811ccf55018375")
SM2_SM3: Final = b"\xff" + SM2_OID_DER
# Signature type prefix -> (name, public key bytes, private key bytes); the whole prefix enters the key ID.
SIGNATURE_TYPES: Final[dict[bytes, tuple[str, int, int]]] = {
    bytes([ED25519]): ("ed25519", 32, 32),
    b"\x04": ("ed25519 cosignature", 32, 32),  # c2sp.org/tlog-cosignature, ledger.cosignature
    SM2_SM3: ("sm2", 65, 32),  # SEC1/GB/T 32918.1 uncompressed point 04||x||y; the scalar d
}
SIG_PREFIX: Final = "\u2014 "  # em dash, space
MAX_SIGNATURES: Final = 100  # SPEC: "MAY … reject notes with more than 100 signatures"
MAX_NOTE_BYTES: Final = 1 << 20


def _type_bytes(sig_type: int | bytes) -> bytes:
    return bytes([sig_type]) if isinstance(sig_type, int) else sig_type


def key_id(name: str, sig_type: int | bytes, public_key: bytes) -> bytes:
    """The 4-byte key ID the signed-note spec derives for a named key."""
    return hashlib.sha256(name.encode() + b"\n" + _type_bytes(sig_type) + public_key).digest()[:4]


def valid_key_name(name: str) -> bool:
    # SPEC: "non-empty, well-formed UTF-8 containing neither Unicode spaces nor plus (U+002B)"
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedNoteError(f"{what} is not standard base64") from exc


def format_key(name: str, kid: bytes, sig_type: int | bytes, key: bytes, *, private: bool = False) -> str:
    """``name+hexkeyid+base64(type||key)`` (a verifier key), or with ``PRIVATE+KEY+`` and the seed."""
    encoded = base64.b64encode(_type_bytes(sig_type) + key).decode()
    return f"{'PRIVATE+KEY+' if private else ''}{name}+{kid.hex()}+{encoded}"


def _split_key(text: str, what: str, private: bool) -> list[str]:
    parts = text.strip().split("+", 4 if private else 2)  # base64 may hold "+"
    if private:
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise MalformedNoteError(f"a {what} is PRIVATE+KEY+name+keyid+key")
        parts = parts[2:]
    if len(parts) != 3:
        raise MalformedNoteError(f"a {what} is name+keyid+key")
    return parts


def key_type(text: str, what: str, *, private: bool = False) -> bytes:
    """The signature type prefix of a key string (a key of ``SIGNATURE_TYPES``). Raises MalformedNoteError."""
    raw = _b64decode(_split_key(text, what, private)[2], what)
    for prefix in SIGNATURE_TYPES:
        if raw.startswith(prefix):
            return prefix
    raise MalformedNoteError(f"{what} is of an unknown signature type 0x{raw[:1].hex()}")


def parse_key(text: str, sig_type: int | bytes, what: str, *, private: bool = False) -> tuple[str, str, bytes]:
    """(name, hex key ID as written, key bytes) of a key string of ``sig_type``. Raises MalformedNoteError;
    the caller checks the key ID against the key it derives."""
    parts = _split_key(text, what, private)
    raw = _b64decode(parts[2], what)
    prefix = _type_bytes(sig_type)
    algorithm, public_size, private_size = SIGNATURE_TYPES[prefix]
    size = private_size if private else public_size
    if len(raw) != len(prefix) + size or not raw.startswith(prefix):
        raise MalformedNoteError(f"{what} is not an {algorithm} key of signature type 0x{prefix.hex()}")
    return parts[0], parts[1], raw[len(prefix) :]


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


def verifier_from_vkey(vkey: str) -> Verifier:
    """The verifier a vkey string describes, of any known signature type.

    Raises MalformedNoteError (an SM2 key without the ``gm`` extra installed too).
    """
    if key_type(vkey, "verifier key") == SM2_SM3:
        from ledger.gm import SM2Verifier  # lazily: the gm extra is optional

        return SM2Verifier.from_vkey(vkey)
    return Ed25519Verifier.from_vkey(vkey)


def signer_from_skey(skey: str) -> Signer:
    """The signer a PRIVATE+KEY string describes, of any known signature type. Raises MalformedNoteError."""
    if key_type(skey, "private key", private=True) == SM2_SM3:
        from ledger.gm import SM2Signer

        return SM2Signer.from_skey(skey)
    return Ed25519Signer.from_skey(skey)


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
