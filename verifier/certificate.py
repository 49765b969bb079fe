"""``sifa-verify --certificate CERT.pdf [FILE]``: a 存证证书 checked offline.

Steps (docs/certificate.md):

1. Read the PDF and take out its one embedded ``receipt.json`` (the receipt it carries).
2. Verify that receipt as ``sifa-verify --receipt`` does (signature, inclusion, terms, witness
   quorum, and FILE's hash when given).
3. Check the court's signature over the certificate's bytes (the last line, ``%sifa-signature``;
   evidence.certificate.check_signature) with the trust file's key of the receipt's log: any
   byte edited, appended (an incremental update) or a missing or second signature fails
   (``certificate_signature_invalid``). Only then is the page's text read as the court's.
4. Recompute the lines a certificate of that verified receipt prints
   (``evidence.certificate.lines``) and compare them with the page's text, line by line: a
   printed time, hash, height or witness that is not the verified one fails (code
   ``certificate_mismatch``, naming the line); a verified line missing from the page, a label the
   verifier does not compute, or a duplicate fails too. Line wrapping and whitespace are ignored.

Bounds: at most MAX_CERTIFICATE bytes are read, one page, a content stream of at most
MAX_CONTENT bytes decompressed (exit 2 beyond).

The court's declared lines (court name, case number) are read and reported as declared, never as
verified. Needs pypdf (``pip install 'sifa[certificate]'``).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from evidence.certificate import (
    ATTACHMENT,
    DECLARED_LABELS,
    CertificateSignatureError,
    check_signature,
    compare_verified,
    lines,
    read_printed,
)  # fmt: skip
from ledger.cosignature import cosigners
from ledger.hashing import SHA256
from ledger.note import Note
from ledger.receipt import TLOG_PROOF, Receipt, verify_receipt
from ledger.suite import hasher_for_log
from verifier.result import Check, VerifyResult

MAX_CERTIFICATE = 16 * 1024 * 1024  # bytes read from the certificate file, at most
MAX_CONTENT = 1024 * 1024  # a page's decompressed content stream, at most (a genuine one is ~12 KB)
MAX_RECEIPT = 4 * 1024 * 1024  # the attached receipt, at most


class CertificateInputError(Exception):
    """A file that is not a readable certificate: exit 2."""


def read_bounded(path: Path) -> bytes:
    """At most MAX_CERTIFICATE bytes of ``path`` (a device such as /dev/zero included). Raises InputError."""
    from verifier.cli import InputError

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CERTIFICATE + 1)
    except OSError as exc:
        raise InputError(f"cannot read certificate {path}: {exc.strerror}") from exc
    if len(data) > MAX_CERTIFICATE:
        raise InputError(f"certificate {path}: larger than {MAX_CERTIFICATE // (1024 * 1024)} MiB; not a certificate")
    return data


def extract(pdf: bytes) -> tuple[bytes, str]:
    """The receipt embedded in a certificate and the text of its pages. Raises CertificateInputError."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:  # the lawyer's minimal install has PyNaCl only
        raise CertificateInputError("reading a certificate needs pypdf: pip install 'sifa[certificate]'") from exc
    # pypdf (7.x) bounds every decompressed stream (75 MB by default, pypdf.Configuration); the
    # page's content stream is bounded tighter below.
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        if len(reader.pages) != 1:
            raise CertificateInputError(f"a certificate has exactly one page; this PDF has {len(reader.pages)}")
        page = reader.pages[0]
        contents = page.get_contents()
        if contents is not None and len(contents.get_data()) > MAX_CONTENT:
            raise CertificateInputError(f"its page's content is over {MAX_CONTENT // 1024} KiB; not a certificate")
        attached = reader.attachments
        found = attached.get(ATTACHMENT, [])
        text = page.extract_text() or ""
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        raise CertificateInputError(f"not a readable PDF: {exc}") from exc
    if len(found) != 1:
        raise CertificateInputError(f"a certificate carries exactly one {ATTACHMENT}; this PDF has {len(found)}")
    if len(found[0]) > MAX_RECEIPT:
        raise CertificateInputError(f"its {ATTACHMENT} is larger than {MAX_RECEIPT // (1024 * 1024)} MiB")
    return found[0], text


def verify_certificate(cert: Path, file: Path | None, trust_path: Path) -> VerifyResult:
    """Every check and its outcome, as ``verifier.cli.verify`` gives them, plus ``certificate``."""
    from verifier.cli import InputError, load_trust, verify

    raw = read_bounded(cert)
    try:
        receipt_bytes, text = extract(raw)
    except CertificateInputError as exc:
        raise InputError(f"certificate {cert}: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="sifa-cert-") as tmp:
        receipt_path = Path(tmp) / ATTACHMENT
        receipt_path.write_bytes(receipt_bytes)
        # Step 2: the receipt as any receipt (its own facts into result; the file's hash if given).
        try:
            result = verify(file, receipt_path, trust_path)
        except InputError as exc:  # name the certificate, never the temporary file
            raise InputError(str(exc).replace(str(receipt_path), f"{cert} (its attached {ATTACHMENT})")) from None
    if not result.valid:
        return result
    # Step 3: the printed lines equal what the verified receipt says (verified again here, to hold its facts).
    trust = load_trust(trust_path)
    is_proof = receipt_bytes.startswith(TLOG_PROOF.encode())
    receipt = Receipt.from_tlog_proof(receipt_bytes) if is_proof else Receipt.from_json(receipt_bytes)
    if is_proof and (hasher := hasher_for_log(receipt.origin, trust.logs)) is not SHA256:  # a GM log: SM3
        receipt = Receipt.from_tlog_proof(receipt_bytes, hasher)
    proved = verify_receipt(receipt, trust.logs)  # the tree hash its trusted key's suite names
    # Step 3: the court signed these very bytes; before that, no printed character is trusted.
    try:
        check_signature(raw, trust.logs, proved.origin)
    except CertificateSignatureError as exc:
        result.add(Check("certificate_signature", False, str(exc), code="certificate_signature_invalid"))
        result.valid = False
        return result
    result.add(Check.passed("certificate_signature", f"the certificate's bytes are signed by {proved.origin}'s "
                                                     "trusted key"))  # fmt: skip
    # Step 4: the verified section prints exactly the verified lines.
    witnesses = cosigners(Note.from_text(receipt.checkpoint), trust.witnesses) if trust.witnesses else {}
    printed = read_printed(text)
    expected = lines(proved, witnesses, {})
    wrong = compare_verified(text, expected.verified, any_witnesses=not trust.witnesses)
    if wrong is not None:
        label, shown = wrong
        value = expected.verified.get(label)
        said = f"the verified receipt says {value!r}" if value is not None else "the verifier computes no such line"
        detail = f"the certificate's {label} reads {shown!r}; {said}"
        result.add(Check("certificate", False, detail, code="certificate_mismatch", term=label))
        result.valid = False
        return result
    detail = f"the {len(expected.verified)} printed verified fields equal the verified receipt's"
    result.add(Check.passed("certificate", detail))
    result.facts["certificate"] = {"verified": expected.verified,
                             "declared": {k: printed[k] for k in DECLARED_LABELS if k in printed}}  # fmt: skip
    return result
