"""``sifa-verify``: check a receipt (and the file it names) offline against a trust file.

Exit codes: 0 valid, 1 invalid (what failed, precisely), 2 usage or unreadable input.
The trust file (docs/trust.md): ``{"logs": [{"origin": ..., "key": "<vkey>"}]}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256
from ledger.note import Ed25519Verifier
from ledger.receipt import Receipt, verify_receipt

CHUNK = 1 << 20


class InputError(Exception):
    """Unreadable input: exit 2."""


def load_trust(path: Path) -> list[Ed25519Verifier]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [Ed25519Verifier.from_vkey(entry["key"]) for entry in doc["logs"]]
    except (OSError, ValueError, KeyError, TypeError, MalformedError) as exc:
        raise InputError(f"trust file {path} is unreadable: {exc}") from exc


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _leaf_file_hashes(leaf_data: bytes) -> set[str]:
    """SHA-256 values a leaf names (``sha256`` fields anywhere in its JSON)."""
    try:
        doc: Any = json.loads(leaf_data)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k == "sha256" and isinstance(v, str):
                    found.add(v.lower())
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def verify(file: Path | None, receipt_path: Path, trust_path: Path) -> dict[str, Any]:
    """Every check and its outcome; raises InputError for unreadable input."""
    keys = load_trust(trust_path)
    try:
        receipt = Receipt.from_json(receipt_path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read receipt {receipt_path}: {exc.strerror}") from exc
    except MalformedError as exc:
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    result: dict[str, Any] = {"valid": False, "terms": {
        "存证编号": receipt.record_id, "区块高度": receipt.height,
        "交易哈希": receipt.leaf_hash_hex, "存证时间": receipt.recorded_at}, "checks": []}  # fmt: skip
    checks: list[dict[str, Any]] = result["checks"]
    if file is not None:
        try:
            digest = file_sha256(file)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror}") from exc
        ok = digest in _leaf_file_hashes(receipt.leaf_data)
        checks.append({"check": "file_hash", "ok": ok, "detail": f"SHA-256 {digest}"})
        if not ok:
            return result
    try:
        verify_receipt(receipt, keys, SHA256)
    except (VerificationError, MalformedError) as exc:
        checks.append({"check": "receipt", "ok": False, "code": exc.code, "detail": exc.diagnostics()})
        return result
    checks.append({"check": "receipt", "ok": True, "detail": "signed checkpoint and inclusion proof verify"})
    result["valid"] = True
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sifa-verify", description="verify a file and its receipt offline")
    p.add_argument("file", nargs="?", type=Path, help="the file the receipt is for (optional)")
    p.add_argument("--receipt", required=True, type=Path)
    p.add_argument("--trust", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print one result object on stdout")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        result = verify(args.file, args.receipt, args.trust)
    except InputError as exc:
        print(f"sifa-verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    for c in result["checks"]:
        mark = "通过 passed" if c["ok"] else "未通过 FAILED"
        print(f"{c['check']}: {mark} — {c['detail']}", file=sys.stderr)
    verdict = "有效 VALID" if result["valid"] else "无效 INVALID"
    print(f"{verdict}: 存证编号 {result['terms']['存证编号']}, 存证时间 {result['terms']['存证时间']}", file=sys.stderr)
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
