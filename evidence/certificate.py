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

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

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
    if isinstance(sha, str):
        out[FILE_SHA256] = sha
    if type(size) is int:
        out[FILE_SIZE] = f"{size} 字节"
    if isinstance(name, str):  # a name in clear in the leaf (older leaves); else the court declares it
        out[FILE_NAME] = name
    out.update({HEIGHT: str(verified.checkpoint.size), LEAF_HASH: verified.leaf_hash.hex(),
                ROOT_HASH: verified.checkpoint.root_hash.hex(), WITNESSES: cosigned(witnesses)})  # fmt: skip
    said = {k: v for k, v in declared.items() if k in DECLARED_LABELS and v and not (
        k == DECLARED_FILE_NAME and out.get(FILE_NAME) == v)}  # fmt: skip
    return Lines(out, said)


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
