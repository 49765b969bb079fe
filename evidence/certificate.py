"""What a 存证证书 (evidence certificate) prints, as a pure function of a verified receipt.

The node renders these lines into the PDF (dossier/certificate.py); ``sifa-verify --certificate``
(verifier/certificate.py) computes them again from the receipt the PDF carries, once that receipt
verified, and compares them with the text the page shows. One function for both, so that the
printed and the checked fields cannot drift apart. docs/certificate.md lists every line.

Two kinds of lines:

- ``verified``: each value follows from the signed checkpoint and the proved leaf (and the
  trusted witnesses' cosignatures); the verifier checks each one as printed.
- ``declared``: what the court states and the receipt cannot prove (the court's name, the case
  number, a file name the leaf holds only as a commitment); printed in their own section, never
  reported as verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from evidence.leaf import MalformedLeafError, read_leaf
from ledger.note import Signer, Verifier
from ledger.receipt import VerifiedReceipt

FORMAT: Final = "sifa-certificate/1"
ATTACHMENT: Final = "receipt.json"  # the receipt inside the PDF, as an embedded file
BEIJING: Final = timezone(timedelta(hours=8), "北京时间")
COLON: Final = "："  # label and value are separated by a full-width colon, one line each

# The verified lines, in print order.
CERTIFICATE_NO: Final = "证书编号"
RECORD_ID: Final = "存证编号"
TIME_BEIJING: Final = "存证时间（北京时间）"
TIME_UTC: Final = "存证时间（UTC）"
LOG: Final = "日志标识"
ITEM: Final = "记录类型"
FILE_SHA256: Final = "文件 SHA-256"
FILE_SIZE: Final = "文件大小"
FILE_NAME: Final = "文件名称"
HEIGHT: Final = "区块高度"
LEAF_HASH: Final = "交易哈希"
ROOT_HASH: Final = "根哈希"
WITNESSES: Final = "见证节点"
VERIFIED_LABELS: Final = (
    CERTIFICATE_NO, RECORD_ID, TIME_BEIJING, TIME_UTC, LOG, ITEM, FILE_SHA256, FILE_SIZE, FILE_NAME, HEIGHT,
    LEAF_HASH, ROOT_HASH, WITNESSES,
)  # fmt: skip
# The declared lines (the court's statement).
COURT: Final = "存证法院"
CASE_NUMBER: Final = "案号"
DECLARED_FILE_NAME: Final = "文件名称（法院登记）"
DECLARED_LABELS: Final = (COURT, CASE_NUMBER, DECLARED_FILE_NAME)
NO_WITNESS: Final = "无"
# The page's headings, in print order (the verified section runs from its heading to the next one).
VERIFIED_HEADING: Final = "经凭证核验的信息（由签名检查点与包含证明得出）"
DECLARED_HEADING: Final = "法院登记信息（凭证不证明此项）"
HOW_TO_HEADING: Final = "核验方法"

# Characters printed as themselves: ranges every CJK font the node uses draws (tests check the
# font's cmap). Any other character (emoji, U+2028, NBSP, Arabic, private use, Extension A/B, a
# backslash) is printed as ``\u{HEX}``, so that what the page shows reads back exactly.
PRINTABLE: Final = (
    (0x20, 0x5B), (0x5D, 0x7E), (0xA1, 0xAC), (0xAE, 0xFF), (0x2013, 0x2014), (0x2018, 0x2019),
    (0x201C, 0x201D), (0x2026, 0x2026), (0x3001, 0x3003), (0x3008, 0x3011), (0x4E00, 0x9FA5), (0xFF01, 0xFF5E),
)  # fmt: skip


def printable(value: str) -> str:
    """``value`` as the certificate prints it: characters outside PRINTABLE as ``\\u{HEX}``."""
    return "".join(ch if any(lo <= ord(ch) <= hi for lo, hi in PRINTABLE) else f"\\u{{{ord(ch):X}}}" for ch in value)


@dataclass(frozen=True, slots=True)
class Lines:
    """The certificate's lines: ``verified`` and ``declared``, each an ordered label -> value."""

    verified: dict[str, str]
    declared: dict[str, str]


def certificate_number(verified: VerifiedReceipt) -> str:
    """证书编号: 20 hex digits of SHA-256 over the log, the leaf index and the leaf hash, so that the
    same record always has the same number and anyone can recompute it."""
    seed = f"{FORMAT}|{verified.origin}|{verified.leaf_index}|{verified.leaf_hash.hex()}".encode()
    return "SC" + hashlib.sha256(seed).hexdigest()[:20].upper()


def beijing(utc_text: str) -> str:
    """``2026-11-22T08:30:00.123456Z`` as Beijing time, ``2026-11-22 16:30:00.123456``."""
    when = datetime.fromisoformat(utc_text.removesuffix("Z")).replace(tzinfo=UTC).astimezone(BEIJING)
    return when.replace(tzinfo=None).isoformat(sep=" ")


def cosigned(witnesses: Mapping[str, int]) -> str:
    """Witness names and the Beijing time each cosigned, ``name 2026-11-22 16:30:05``; sorted by name."""
    if not witnesses:
        return NO_WITNESS
    return "；".join(
        f"{name} {datetime.fromtimestamp(t, BEIJING).replace(tzinfo=None).isoformat(sep=' ')}"
        for name, t in sorted(witnesses.items())
    )


def leaf_document(verified: VerifiedReceipt) -> dict[str, Any]:
    try:
        doc = json.loads(verified.leaf_data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def lines(verified: VerifiedReceipt, witnesses: Mapping[str, int], declared: Mapping[str, str]) -> Lines:
    """What a certificate of ``verified`` prints. ``witnesses``: the trusted witnesses whose
    cosignature verified, with their times; ``declared``: the court's statements, by label."""
    doc = leaf_document(verified)
    body = doc.get("body") if isinstance(doc.get("body"), dict) else {}
    assert isinstance(body, dict)
    out = {
        CERTIFICATE_NO: certificate_number(verified),
        RECORD_ID: verified.terms["存证编号"],
        TIME_BEIJING: beijing(verified.recorded_at),
        TIME_UTC: verified.recorded_at,
        LOG: verified.origin,
        ITEM: str(doc.get("type", "")),
    }
    sha, size, name = body.get("sha256"), body.get("size"), body.get("name")
    if "format" in doc:  # sifa-leaf/2: the files it names are in clear, everything else committed
        try:
            files = read_leaf(verified.leaf_data).files
        except MalformedLeafError:
            files = ()
        main = next((f for f in files if f.field == "sha256"), files[0] if files else None)
        sha, size = (main.sha256, main.size) if main is not None else (None, None)
    if isinstance(sha, str):
        out[FILE_SHA256] = sha
    if type(size) is int:
        out[FILE_SIZE] = f"{size} 字节"
    if isinstance(name, str):  # a name in clear in the leaf (older leaves); else the court declares it
        out[FILE_NAME] = name
    out.update({HEIGHT: str(verified.checkpoint.size), LEAF_HASH: verified.leaf_hash.hex(),
                ROOT_HASH: verified.checkpoint.root_hash.hex(), WITNESSES: cosigned(witnesses)})  # fmt: skip
    out = {k: printable(v) for k, v in out.items()}
    said = {k: printable(v) for k, v in declared.items() if k in DECLARED_LABELS and v and not (
        k == DECLARED_FILE_NAME and out.get(FILE_NAME) == printable(v))}  # fmt: skip
    return Lines(out, said)


def _squeezed(text: str) -> str:
    """Text with every whitespace character removed: a wrapped line reads as the unwrapped one."""
    return "".join(text.split())


def compare_verified(text: str, expected: Mapping[str, str], *, any_witnesses: bool = False) -> tuple[str, str] | None:
    """None when the page's verified section holds exactly the ``expected`` lines, in order (line
    wrapping and whitespace aside); else (label, what the page shows there). A label the verifier
    did not compute, a duplicate, or any other text in the section fails. ``any_witnesses``: the
    见证节点 line is not checked (the trust file names no witness), only that it is the last line."""
    page = _squeezed(text)
    start = page.find(_squeezed(VERIFIED_HEADING))
    if start < 0:
        return (VERIFIED_HEADING, "missing")
    pos = start + len(_squeezed(VERIFIED_HEADING))
    for label, value in expected.items():
        if label == WITNESSES and any_witnesses:
            head = _squeezed(label + COLON)
            if not page.startswith(head, pos):
                return (label, page[pos : pos + len(head) + 16])
            pos += len(head)
            found = (page.find(_squeezed(h), pos) for h in (DECLARED_HEADING, HOW_TO_HEADING + COLON))
            ends = [i for i in found if i >= 0]
            end = min(ends) if ends else len(page)
            if COLON in page[pos:end]:
                return (label, page[pos:end])
            pos = end
            continue
        chunk = _squeezed(label + COLON + value)
        if not page.startswith(chunk, pos):
            other, sep, _ = page[pos : pos + 24].partition(COLON)
            if sep and other != _squeezed(label):  # another line where this one belongs: name that one
                known = {_squeezed(k): k for k in VERIFIED_LABELS}
                return (known.get(other, other), page[pos : pos + len(chunk)])
            return (label, page[pos : pos + len(chunk)])
        pos += len(chunk)
    rest = page[pos:]
    if not (rest.startswith(_squeezed(DECLARED_HEADING)) or rest.startswith(_squeezed(HOW_TO_HEADING + COLON))):
        label = rest.partition(COLON)[0][:40] if COLON in rest else rest[:40]
        return (label or "(end)", rest[:80])
    return None


def read_printed(text: str) -> dict[str, str]:
    """The ``label：value`` lines of a page's extracted text, by label (the first of each label).
    Whitespace around label and value is dropped; lines without the colon are prose."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(COLON)
        label = label.strip()
        if sep and label and label not in found:
            found[label] = value.strip()
    return found


# The court's signature over the certificate's bytes (docs/certificate.md, "The signature").
# The PDF ends ``%%EOF\n``; the node appends one last line, ``%sifa-signature <base64>\n``, a PDF
# comment readers ignore. The signature is the log's key (Ed25519, or SM2 on a GM log) over
# SIGNATURE_DOMAIN + SHA-256(every byte before that line): a NUL-bearing message that is never a
# checkpoint note (note text is UTF-8 lines without control characters), so neither signature can
# be replayed as the other. Anything after the line, a second line, or bytes edited before it fail.
SIGNATURE_DOMAIN: Final = b"sifa-certificate/1\x00"
SIGNATURE_PREFIX: Final = b"%sifa-signature "
_SIGNATURE_LINE: Final = re.compile(rb"%sifa-signature ([A-Za-z0-9+/]+={0,2})\n\Z")


class CertificateSignatureError(ValueError):
    """The certificate's bytes are not as the court signed them (code ``certificate_signature_invalid``)."""


def signature_message(signed: bytes) -> bytes:
    """What the court signs: the domain, then SHA-256 of the PDF's bytes before the signature line."""
    return SIGNATURE_DOMAIN + hashlib.sha256(signed).digest()


def sign_pdf(pdf: bytes, signer: Signer) -> bytes:
    """The PDF with the court's signature line appended (the PDF must end with ``%%EOF\n``)."""
    if not pdf.endswith(b"%%EOF\n"):
        pdf = pdf.rstrip(b"\r\n") + b"\n"
    signature = signer.sign(signature_message(pdf))
    return pdf + SIGNATURE_PREFIX + base64.b64encode(signature) + b"\n"


def split_signed(raw: bytes) -> tuple[bytes, bytes]:
    """The signed bytes and the signature. Raises CertificateSignatureError: no signature line, more
    than one, or bytes after it (an incremental update appended to a signed certificate)."""
    if raw.count(SIGNATURE_PREFIX) != 1:
        found = raw.count(SIGNATURE_PREFIX)
        raise CertificateSignatureError(f"a certificate carries exactly one court signature line; this one has {found}")
    at = raw.index(SIGNATURE_PREFIX)
    match = _SIGNATURE_LINE.match(raw, at)
    if at == 0 or raw[at - 1 : at] != b"\n" or match is None:
        raise CertificateSignatureError("bytes follow the court's signature line (an edit appended to the certificate)")
    try:
        signature = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateSignatureError("the court's signature line is not base64") from exc
    return raw[:at], signature


def check_signature(raw: bytes, keys: Sequence[Verifier], origin: str) -> bytes:
    """The signed bytes of a certificate whose signature verifies under a trusted key of the log
    ``origin``. Raises CertificateSignatureError."""
    signed, signature = split_signed(raw)
    message = signature_message(signed)
    if not any(k.name == origin and k.verify(message, signature) for k in keys):
        raise CertificateSignatureError(
            f"the certificate is not signed by a trusted key of {origin}: "
            "its bytes were changed after the court signed it, or another key signed it"
        )
    return signed
