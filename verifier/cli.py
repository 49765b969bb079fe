"""``sifa-verify``: check, offline, a file and its receipt, or that a log was never rewritten.

    sifa-verify [FILE] --receipt RECEIPT.json|PROOF.tlog-proof --trust TRUST.json [--json]
    sifa-verify --dossier PACKAGE.tar --trust TRUST.json [--json]
    sifa-verify consistency OLD_CHECKPOINT NEW_CHECKPOINT --proof PROOF.json --trust TRUST.json [--json]

Exit codes: 0 valid, 1 invalid (the failed check is named), 2 usage or unreadable input.
Human lines go to stderr (Chinese and English); ``--json`` prints one result object on stdout.
The trust file is documented in docs/trust.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evidence.package import read_package
from ledger.checkpoint import open_checkpoint
from ledger.cosignature import require_quorum
from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256
from ledger.note import Note
from ledger.proof import verify_consistency
from ledger.receipt import TLOG_PROOF, Receipt, verify_receipt
from ledger.trust import Trust, read_trust

CHUNK = 1 << 20


class InputError(Exception):
    """Unreadable input: exit 2."""


def load_trust(path: Path) -> Trust:
    """Read a trust file (docs/trust.md). Raises InputError."""
    try:
        trust = read_trust(path)
    except MalformedError as exc:
        raise InputError(f"trust file {path} is unreadable: {exc.diagnostics()}") from exc
    if not trust.logs:
        raise InputError(f"trust file {path} names no log")
    return trust


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _leaf(leaf_data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(leaf_data)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _leaf_file_hashes(doc: Any) -> set[str]:
    """SHA-256 values a leaf names (``sha256``-like fields anywhere in it)."""
    found: set[str] = set()
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k.endswith("sha256") and isinstance(v, str):
                    found.add(v.lower())
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from exc


def verify(file: Path | None, receipt_path: Path, trust_path: Path) -> dict[str, Any]:
    """Every check and its outcome; raises InputError for unreadable input."""
    trust = load_trust(trust_path)
    try:
        raw = _read(receipt_path, "receipt")
        receipt = Receipt.from_tlog_proof(raw) if raw.startswith(TLOG_PROOF.encode()) else Receipt.from_json(raw)
    except MalformedError as exc:
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    leaf = _leaf(receipt.leaf_data)
    result: dict[str, Any] = {"valid": False, "log": receipt.origin, "item": leaf.get("type"),
                              "dossier": leaf.get("dossier"), "terms": {
        "存证编号": receipt.record_id, "区块高度": receipt.height,
        "交易哈希": receipt.leaf_hash_hex, "存证时间": receipt.recorded_at}, "checks": []}  # fmt: skip
    checks: list[dict[str, Any]] = result["checks"]
    if file is not None:
        try:
            digest = file_sha256(file)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror}") from exc
        ok = digest in _leaf_file_hashes(leaf)
        detail = f"SHA-256 {digest}" + ("" if ok else " is not the file this receipt records")
        checks.append({"check": "file_hash", "ok": ok, "code": None if ok else "file_not_in_receipt",
                       "detail": detail})  # fmt: skip
        if not ok:
            return result
    try:
        verify_receipt(receipt, trust.logs, SHA256)
    except (VerificationError, MalformedError) as exc:
        checks.append({"check": "receipt", "ok": False, "code": exc.code, "detail": exc.diagnostics()})
        return result
    checks.append({"check": "receipt", "ok": True, "code": None,
                   "detail": "checkpoint signed by a trusted log key; inclusion proof leads to its root"})  # fmt: skip
    if not _witnessed(Note.from_text(receipt.checkpoint), trust, checks):
        return result
    result["valid"] = True
    return result


def _witnessed(note: Note, trust: Trust, checks: list[dict[str, Any]]) -> bool:
    """The trust file's witness quorum (none asked: nothing to check)."""
    if trust.quorum == 0:
        return True
    try:
        found = require_quorum(note, trust.witnesses, trust.quorum)
    except VerificationError as exc:
        checks.append({"check": "witnesses", "ok": False, "code": exc.code, "detail": exc.diagnostics()})
        return False
    who = ", ".join(sorted(found))
    checks.append({"check": "witnesses", "ok": True, "code": None,
                   "detail": f"{len(found)} of {trust.quorum} required witnesses cosigned: {who}"})  # fmt: skip
    return True


def verify_consistency_files(old: Path, new: Path, proof_path: Path, trust_path: Path) -> dict[str, Any]:
    """Check that the log of NEW extends the log of OLD (never rewritten)."""
    keys = load_trust(trust_path).logs
    result: dict[str, Any] = {"valid": False, "checks": []}
    try:
        old_cp, _ = open_checkpoint(_read(old, "checkpoint"), keys)
        new_cp, _ = open_checkpoint(_read(new, "checkpoint"), keys)
        doc = json.loads(_read(proof_path, "proof"))
        hashes = doc["proof"] if isinstance(doc, dict) else doc
        proof = [base64.b64decode(h, validate=True) for h in hashes]
    except MalformedError as exc:
        raise InputError(exc.diagnostics()) from exc
    except VerificationError as exc:
        result["checks"].append({"check": "checkpoint_signature", "ok": False, "code": exc.code,
                                 "detail": exc.diagnostics()})  # fmt: skip
        return result
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InputError(f"proof {proof_path} is not a list of base64 hashes: {exc}") from exc
    result.update(log=old_cp.origin, old_size=old_cp.size, new_size=new_cp.size)
    if old_cp.origin != new_cp.origin:
        result["checks"].append({"check": "same_log", "ok": False, "code": "different_logs",
                                 "detail": f"{old_cp.origin} and {new_cp.origin} are different logs"})  # fmt: skip
        return result
    try:
        verify_consistency(SHA256, old_cp.size, new_cp.size, old_cp.root_hash, new_cp.root_hash, proof)
    except VerificationError as exc:
        result["checks"].append({"check": "consistency", "ok": False, "code": exc.code,
                                 "detail": exc.diagnostics()})  # fmt: skip
        return result
    detail = f"the log at size {new_cp.size} extends the log at size {old_cp.size}"
    result["checks"].append({"check": "consistency", "ok": True, "code": None, "detail": detail})
    result["valid"] = True
    return result


def verify_dossier(package_path: Path, trust_path: Path, *, progress: bool = False) -> dict[str, Any]:
    """Verify a whole dossier package (docs/package.md): every event proved, every file's bytes."""
    trust = load_trust(trust_path)
    result: dict[str, Any] = {"valid": False, "checks": []}

    def show(done: int, total: int) -> None:
        if progress and (done == total or done % (16 << 20) < CHUNK):
            bar = "#" * int(30 * done / max(total, 1))
            print(f"\r[{bar:<30}] {done >> 20}/{total >> 20} MiB", end="", file=sys.stderr, flush=True)

    try:
        with package_path.open("rb") as f:
            # A lawyer's copy withholds the 副卷's events (proved, not shown), and says how many.
            package = read_package(f, trust.logs, witnesses=trust.witnesses, quorum=trust.quorum, progress=show,
                                   withheld=True)  # fmt: skip
    except OSError as exc:
        raise InputError(f"cannot read package {package_path}: {exc.strerror or exc}") from exc
    except (VerificationError, MalformedError) as exc:
        if progress:
            print(file=sys.stderr)
        result["checks"].append({"check": str(exc.detail.get("check", "package")), "ok": False, "code": exc.code,
                                 "detail": exc.diagnostics()})  # fmt: skip
        return result
    if progress:
        print(file=sys.stderr)
    opened = package.events[0].doc["body"]
    result.update(log=package.origin, dossier=package.dossier, court=opened.get("court"),
                  case_number=opened.get("case_number"), events=len(package.events) + len(package.withheld),
                  withheld_events=len(package.withheld), files=len(package.files),
                  bytes=sum(package.files.values()), tree_size=package.checkpoint.size)  # fmt: skip
    result["checks"] = [{"check": c, "ok": True, "code": None, "detail": d} for c, d in package.checks]
    result["checks"].append({"check": "file_bytes", "ok": True, "code": None,
                             "detail": f"all {len(package.files)} files hash to their names"})  # fmt: skip
    result["valid"] = True
    return result


def _report(result: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    for c in result["checks"]:
        mark = "通过 passed" if c["ok"] else "未通过 FAILED"
        print(f"{c['check']}: {mark} — {c['detail']}", file=sys.stderr)
    verdict = "有效 VALID" if result["valid"] else "无效 INVALID"
    if "case_number" in result or ("terms" not in result and "old_size" not in result):
        print(f"{verdict}: 卷宗 dossier {result.get('case_number', '?')} of court {result.get('court', '?')} "
              f"({result.get('log', '?')}), {result.get('events', '?')} events, {result.get('files', '?')} files"
              + (f"; {result['withheld_events']} events withheld from this copy (副卷)"
                 if result.get("withheld_events") else ""), file=sys.stderr)  # fmt: skip
    elif "terms" in result:
        t = result["terms"]
        print(f"{verdict}: {result['log']} 存证编号 {t['存证编号']} ({result.get('item') or '?'}), "
              f"存证时间 {t['存证时间']}, 区块高度 {t['区块高度']}", file=sys.stderr)  # fmt: skip
    else:
        print(f"{verdict}: log {result.get('log', '?')} {result.get('old_size', '?')} → {result.get('new_size', '?')}",
              file=sys.stderr)  # fmt: skip
    return 0 if result["valid"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    consistency = argv[:1] == ["consistency"]
    p = argparse.ArgumentParser(prog="sifa-verify", description="verify, offline, a court's records")
    if consistency:
        argv = argv[1:]
        p.add_argument("old", type=Path, help="the signed checkpoint you kept")
        p.add_argument("new", type=Path, help="a later signed checkpoint")
        p.add_argument("--proof", required=True, type=Path, help="consistency proof (JSON list of base64)")
    else:
        p.add_argument("file", nargs="?", type=Path, help="the file the receipt is for (optional)")
        p.add_argument("--receipt", type=Path)
        p.add_argument("--dossier", type=Path, help="a dossier package (BagIt tar) to verify whole")
    p.add_argument("--trust", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print one result object on stdout")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        if consistency:
            result = verify_consistency_files(args.old, args.new, args.proof, args.trust)
        elif args.dossier is not None:
            if args.receipt is not None or args.file is not None:
                raise InputError("--dossier verifies a package on its own; give no FILE or --receipt with it")
            result = verify_dossier(args.dossier, args.trust, progress=sys.stderr.isatty() and not args.json)
        elif args.receipt is None:
            raise InputError("give --receipt RECEIPT (with or without FILE), or --dossier PACKAGE")
        else:
            result = verify(args.file, args.receipt, args.trust)
    except InputError as exc:
        print(f"sifa-verify: {exc}", file=sys.stderr)
        return 2
    return _report(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
