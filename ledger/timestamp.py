"""RFC 3161 trusted time for checkpoints: the request a sequencer sends, the token a verifier checks.

A token binds a time from a timestamp authority (TSA) outside the court to the SHA-256 of a
checkpoint's body (the signed note's text: origin, size, root; not its signature lines, which
witnesses add later). What a verified token proves, and what it does not, is in docs/time.md.

Pure: bytes in, bytes out. Parsing uses ``asn1crypto``, signatures ``cryptography`` (both in the
``tsa`` extra); a verifier without them reports the token as not checked (``available()``).

    VerificationError
     └── TimestampError            the token does not verify (code timestamp_invalid)
    MalformedError
     └── MalformedTimestampError   not a timestamp token, or a TSA answer that grants none
"""

from __future__ import annotations

import base64
import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from ledger.errors import MalformedError, VerificationError

_HASHES: Final = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
BEIJING: Final = timezone(timedelta(hours=8), "CST")
MAX_TOKEN_BYTES: Final = 64 << 10
MAX_CHAIN: Final = 4  # certificates walked from the TSA's signing certificate to one the trust file names


class TimestampError(VerificationError):
    code = "timestamp_invalid"


class UnknownTsaError(TimestampError):
    """A token whose TSA the trust file does not name (nor any CA above it): the verifier cannot
    judge it, and reports the trusted time not checked (docs/time.md)."""


class MalformedTimestampError(MalformedError):
    code = "malformed_timestamp"


def available() -> bool:
    """Whether this installation can check tokens (``asn1crypto`` and ``cryptography`` importable)."""
    try:
        import asn1crypto.tsp  # noqa: F401
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


def imprint(checkpoint_body: str) -> bytes:
    """The message a token stamps: SHA-256 of the checkpoint body (UTF-8, as signed)."""
    return hashlib.sha256(checkpoint_body.encode("utf-8")).digest()


def request(checkpoint_body: str, nonce: int | None = None) -> tuple[bytes, int]:
    """A DER TimeStampReq (RFC 3161 §2.4.1) for the checkpoint, asking for the TSA's certificate;
    returns it and its nonce."""
    from asn1crypto import tsp

    nonce = int.from_bytes(os.urandom(8), "big") if nonce is None else nonce
    req = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": imprint(checkpoint_body)},
        "nonce": nonce,
        "cert_req": True,
    })  # fmt: skip
    return req.dump(), nonce


def token_from_response(der: bytes, nonce: int | None = None, checkpoint_body: str | None = None) -> bytes:
    """The token (DER ContentInfo) in a TSA's TimeStampResp; raises MalformedTimestampError when the
    answer is unreadable, not granted, answers another nonce, or stamps another message than
    ``checkpoint_body``."""
    from asn1crypto import tsp

    try:
        resp = tsp.TimeStampResp.load(der)
        status = resp["status"]["status"].native
        token = resp["time_stamp_token"]
        if status not in ("granted", "granted_with_mods") or token.native is None:
            raise MalformedTimestampError(f"the TSA did not grant a token (status {status})")
        out: bytes = token.dump()
        info = _parse(out)[1]
        if nonce is not None and info["nonce"].native != nonce:
            raise MalformedTimestampError("the TSA answered another request (nonce)")
        stamped = info["message_imprint"]
        algorithm, message = stamped["hash_algorithm"]["algorithm"].native, stamped["hashed_message"].native
        if checkpoint_body is not None and (algorithm != "sha256" or message != imprint(checkpoint_body)):
            raise MalformedTimestampError("the TSA stamped another message than the checkpoint")
        return out
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedTimestampError(f"not an RFC 3161 answer: {exc}") from exc


@dataclass(frozen=True)
class StampedTime:
    """What a verified token says: the TSA's time, the TSA (its certificate's subject), the serial."""

    time: datetime
    tsa: str
    serial: int

    @property
    def utc(self) -> str:
        return self.time.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    @property
    def beijing(self) -> str:
        return self.time.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S 北京时间")


def _parse(token: bytes) -> tuple[Any, Any, Any]:
    """(SignedData, TSTInfo, raw eContent) of a token; raises MalformedTimestampError."""
    from asn1crypto import cms

    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedTimestampError(f"a token of {len(token)} bytes is larger than {MAX_TOKEN_BYTES}")
    try:
        info = cms.ContentInfo.load(token, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedTimestampError("a timestamp token is CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise MalformedTimestampError("the token's content is not a TSTInfo")
        tst = encap["content"].parsed
        tst.native  # noqa: B018 - parse it all now: a broken field is malformed, not a later crash
        return signed, tst, encap["content"].contents
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedTimestampError(f"not a timestamp token: {exc}") from exc


def _der_certs(pems: Sequence[str]) -> list[bytes]:
    out = []
    for pem in pems:
        body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
        out.append(base64.b64decode(body, validate=True))
    return out


def _set_of(attrs: Any) -> bytes:
    # SPEC: RFC 5652 §5.4 "the DER encoding of the SET OF attributes" (EXPLICIT SET OF tag, not [0]).
    contents: bytes = attrs.contents
    n = len(contents)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return b"\x31" + length + contents


def _check_signature(cert: Any, signature: bytes, data: bytes, digest: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[digest]
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            raise TimestampError(f"the TSA's key type {type(key).__name__} is not supported")
    except InvalidSignature as exc:
        raise TimestampError("the TSA's signature over the token does not verify") from exc


def verify_token(token: bytes, checkpoint_body: str, tsa_certificates: Sequence[str]) -> StampedTime:
    """Check a token for a checkpoint against the TSA certificates (PEM) a trust file names: see
    ``_verify_token``. Raises TimestampError, or MalformedTimestampError (any part that does not parse)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.utils import CryptographyDeprecationWarning
    from cryptography.x509 import InvalidVersion

    try:
        return _verify_token(token, checkpoint_body, tsa_certificates)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, InvalidVersion, UnsupportedAlgorithm,
            CryptographyDeprecationWarning) as exc:  # fmt: skip
        raise MalformedTimestampError(f"the token does not parse: {exc}") from exc


def _verify_token(token: bytes, checkpoint_body: str, tsa_certificates: Sequence[str]) -> StampedTime:
    """Check a token for a checkpoint against the TSA certificates (PEM) a trust file names.

    Steps (docs/time.md): 1 the token stamps SHA-256 of this checkpoint body; 2 the signed
    attributes name this TSTInfo (content type, message digest); 3 the TSA's signature over them
    verifies with its certificate; 4 that certificate is for timestamping and chains to a named one,
    each valid at the stamped time. Raises TimestampError, or MalformedTimestampError.
    """

    signed, tst, econtent = _parse(token)
    # Step 1: the imprint is of this checkpoint.
    algorithm = tst["message_imprint"]["hash_algorithm"]["algorithm"].native
    if algorithm not in _HASHES:
        raise TimestampError(f"the token's imprint uses {algorithm}, not SHA-2")
    if tst["message_imprint"]["hashed_message"].native != _HASHES[algorithm](checkpoint_body.encode()).digest():
        raise TimestampError("the token stamps another message, not this checkpoint")
    when: datetime = tst["gen_time"].native
    # Step 2: one signer, whose signed attributes name this content.
    if len(signed["signer_infos"]) != 1:
        raise TimestampError("a timestamp token has exactly one signer")
    signer = signed["signer_infos"][0]
    digest = signer["digest_algorithm"]["algorithm"].native
    if digest not in _HASHES:
        raise TimestampError(f"the token's digest {digest} is not SHA-2")
    attrs = signer["signed_attrs"]
    if not attrs.native:
        raise TimestampError("the token has no signed attributes")
    found = {a["type"].native: a["values"][0].native for a in attrs}
    if found.get("content_type") != "tst_info" or found.get("message_digest") != _HASHES[digest](econtent).digest():
        raise TimestampError("the token's signed attributes do not name its content")
    # Step 3: the signature, by the certificate the signer identifier names.
    trusted = [_certificate(d) for d in _der_certs(tsa_certificates)]
    carried = [_certificate(c.chosen.dump()) for c in (signed["certificates"] or []) if c.name == "certificate"]
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        issuer = sid.chosen["issuer"].dump()
        match = [c for c in carried + trusted if c.serial_number == serial and c.issuer.public_bytes() == issuer]
    else:
        ski = sid.chosen.native
        match = [c for c in carried + trusted if _ski(c) == ski]
    if not match:
        raise UnknownTsaError("the token does not carry the TSA's certificate, nor does the trust file name it")
    cert = match[0]
    _check_signature(cert, signer["signature"].native, _set_of(attrs), digest)
    # Step 4: a timestamping certificate, chained to one the trust file names, valid at that time.
    timestamping_only(cert)
    _chain(cert, carried, trusted, when)
    subject = cert.subject.rfc4514_string()
    return StampedTime(when, subject, int(tst["serial_number"].native))


def _certificate(der: bytes) -> Any:
    """An X.509 certificate; one that parses only with a warning (RFC 5280 violations) is malformed."""
    from cryptography import x509
    from cryptography.utils import CryptographyDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def _extension(cert: Any, kind: type) -> Any:
    """The value of ``cert``'s extension of class ``kind`` (cryptography.x509), None when it has none."""
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _ski(cert: Any) -> bytes | None:
    from cryptography import x509

    ski = _extension(cert, x509.SubjectKeyIdentifier)
    return None if ski is None else bytes(ski.digest)


def _chain(cert: Any, carried: list[Any], trusted: list[Any], when: datetime) -> None:
    from cryptography.exceptions import InvalidSignature

    roots = {c.public_bytes(_der()) for c in trusted}
    current = cert
    for below in range(MAX_CHAIN):  # below: CA certificates between the issuer looked for and the TSA's
        if not current.not_valid_before_utc <= when <= current.not_valid_after_utc:
            raise TimestampError(f"certificate {current.subject.rfc4514_string()} was not valid at the stamped time")
        if current.public_bytes(_der()) in roots:
            return
        issuers = [c for c in trusted + carried if c.subject == current.issuer and c is not current]
        for issuer in issuers:
            try:
                current.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            _may_issue(issuer, below)
            current = issuer
            break
        else:
            raise UnknownTsaError(
                f"the TSA's certificate ({cert.subject.rfc4514_string()}) does not chain to a TSA certificate the "
                "trust file names"
            )
    raise TimestampError("the TSA's certificate chain is longer than a verifier follows")


def timestamping_only(cert: Any) -> None:
    """RFC 3161 section 2.3: a TSA's certificate has a critical extended key usage whose only
    purpose is timeStamping. Raises TimestampError."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampError("the TSA's certificate is not for timestamping (no extended key usage)") from exc
    if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING] or not eku.critical:
        raise TimestampError("the TSA's certificate is not for timestamping only (RFC 3161: a critical "
                             "extended key usage of timeStamping alone)")  # fmt: skip


def _may_issue(issuer: Any, below: int) -> None:
    """Raise TimestampError unless ``issuer`` is a CA (basicConstraints cA, keyUsage keyCertSign)
    whose path length allows ``below`` CA certificates under it (RFC 5280 section 4.2.1.9)."""
    from cryptography import x509

    what = issuer.subject.rfc4514_string()
    basic = _extension(issuer, x509.BasicConstraints)
    if basic is None or not basic.ca:
        raise TimestampError(f"certificate {what} issued a certificate on the TSA's path but is not a CA")
    if basic.path_length is not None and below > basic.path_length:
        raise TimestampError(f"certificate {what} allows {basic.path_length} CA certificate(s) below it, not {below}")
    usage = _extension(issuer, x509.KeyUsage)
    if usage is None or not usage.key_cert_sign:
        raise TimestampError(f"certificate {what} issued a certificate on the TSA's path without keyCertSign")


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


@dataclass(frozen=True)
class TimestampPart:
    """A receipt's ``timestamp``: a token for a checkpoint that covers the receipt's leaf, with that
    checkpoint (signed note text) and the leaf's inclusion proof in it."""

    checkpoint: str
    inclusion_proof: tuple[bytes, ...]
    token: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "inclusion_proof": [base64.b64encode(h).decode() for h in
                self.inclusion_proof], "token": base64.b64encode(self.token).decode()}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Any) -> TimestampPart:
        """Raises MalformedTimestampError."""
        try:
            if not isinstance(doc, dict) or set(doc) != {"checkpoint", "inclusion_proof", "token"}:
                raise ValueError("a timestamp holds exactly checkpoint, inclusion_proof and token")
            if not isinstance(doc["checkpoint"], str) or not isinstance(doc["inclusion_proof"], list):
                raise ValueError("checkpoint is note text, inclusion_proof a list")
            if len(doc["inclusion_proof"]) > 64:
                raise ValueError("an inclusion proof has at most 64 hashes")
            proof = tuple(base64.b64decode(h, validate=True) for h in doc["inclusion_proof"])
            token = base64.b64decode(doc["token"], validate=True)
        except (ValueError, TypeError) as exc:
            raise MalformedTimestampError(f"receipt timestamp: {exc}") from exc
        return cls(doc["checkpoint"], proof, token)
