"""``sifa-verify --certificate CERT.pdf [FILE]``: a 存证证书 checked offline.

Steps (docs/certificate.md):

1. Read the PDF and take out its one embedded ``receipt.json`` (the receipt it carries).
2. Verify that receipt as ``sifa-verify --receipt`` does (signature, inclusion, terms, witness
   quorum, and FILE's hash when given).
3. Recompute the lines a certificate of that verified receipt prints
   (``evidence.certificate.lines``) and compare them with the page's text, line by line: a
   printed time, hash, height or witness that is not the verified one fails (code
   ``certificate_mismatch``, naming the line); a verified line missing from the page fails too.

The court's declared lines (court name, case number) are read and reported as declared, never as
verified. Needs pypdf (``pip install 'sifa[certificate]'``).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from evidence.certificate import ATTACHMENT, DECLARED_LABELS, lines, read_printed
from ledger.cosignature import cosigners
from ledger.hashing import SHA256
from ledger.note import Note
from ledger.receipt import TLOG_PROOF, Receipt, verify_receipt


class CertificateInputError(Exception):
    """A file that is not a readable certificate: exit 2."""


def extract(pdf: bytes) -> tuple[bytes, str]:
    """The receipt embedded in a certificate and the text of its pages. Raises CertificateInputError."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:  # the lawyer's minimal install has PyNaCl only
        raise CertificateInputError("reading a certificate needs pypdf: pip install 'sifa[certificate]'") from exc
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        attached = reader.attachments
        found = attached.get(ATTACHMENT, [])
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise CertificateInputError(f"not a readable PDF: {exc}") from exc
    if len(found) != 1:
        raise CertificateInputError(f"a certificate carries exactly one {ATTACHMENT}; this PDF has {len(found)}")
    return found[0], text


def verify_certificate(cert: Path, file: Path | None, trust_path: Path) -> dict[str, Any]:
    """Every check and its outcome, as ``verifier.cli.verify`` gives them, plus ``certificate``."""
    from verifier.cli import InputError, _read, load_trust, verify

    raw = _read(cert, "certificate")
    try:
        receipt_bytes, text = extract(raw)
    except CertificateInputError as exc:
        raise InputError(f"certificate {cert}: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="sifa-cert-") as tmp:
        receipt_path = Path(tmp) / ATTACHMENT
        receipt_path.write_bytes(receipt_bytes)
        # Step 2: the receipt as any receipt (its own facts into result; the file's hash if given).
        result = verify(file, receipt_path, trust_path)
    if not result["valid"]:
        return result
    # Step 3: the printed lines equal what the verified receipt says (verified again here, to hold its facts).
    trust = load_trust(trust_path)
    is_proof = receipt_bytes.startswith(TLOG_PROOF.encode())
    receipt = Receipt.from_tlog_proof(receipt_bytes) if is_proof else Receipt.from_json(receipt_bytes)
    proved = verify_receipt(receipt, trust.logs, SHA256)
    witnesses = cosigners(Note.from_text(receipt.checkpoint), trust.witnesses) if trust.witnesses else {}
    printed = read_printed(text)
    expected = lines(proved, witnesses, {})
    checks: list[dict[str, Any]] = result["checks"]
    for label, value in expected.verified.items():
        if label == "见证节点" and not trust.witnesses:
            continue  # the trust file names no witness: who cosigned is not checked here
        shown = printed.get(label)
        if shown != value:
            what = "is missing" if shown is None else f"reads {shown!r}"
            detail = f"the certificate's {label} {what}; the verified receipt says {value!r}"
            checks.append({"check": "certificate", "ok": False, "code": "certificate_mismatch", "term": label,
                           "detail": detail})  # fmt: skip
            result["valid"] = False
            return result
    detail = f"the {len(expected.verified)} printed verified fields equal the verified receipt's"
    checks.append({"check": "certificate", "ok": True, "code": None, "detail": detail})
    result["certificate"] = {"verified": expected.verified,
                             "declared": {k: printed[k] for k in DECLARED_LABELS if k in printed}}  # fmt: skip
    return result
