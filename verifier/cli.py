"""``sifa-verify``: check, offline, a file and its receipt, or that a log was never rewritten.

    sifa-verify [FILE] --receipt RECEIPT.json|RECEIPT.bin|PROOF.tlog-proof --trust TRUST.json [--json]
    sifa-verify --dossier PACKAGE.tar --trust TRUST.json [--json]
    sifa-verify [FILE] --certificate CERT.pdf --trust TRUST.json [--json]
    sifa-verify consistency OLD_CHECKPOINT NEW_CHECKPOINT --proof PROOF.json --trust TRUST.json [--json]
    sifa-verify redact RECEIPT.json|RECEIPT.bin --keep 文件名 [--keep PATH|PATTERN|LABEL ...] [-o OUT]
    sifa-verify compact RECEIPT.json [-o RECEIPT.bin]       (and back: sifa-verify expand RECEIPT.bin)

A ``sifa-receipt/2`` receipt carries disclosures: the values (and salts) of some of its
``sifa-leaf/2`` leaf's commitments. Each is checked against its commitment and printed as verified;
every other committed field is printed as "未披露 / not disclosed"; a disclosure that does not open
its commitment makes the receipt invalid (``disclosure_mismatch``). ``redact`` writes the receipt
with fewer disclosures, for a third party; it verifies the same (docs/privacy.md).

Exit codes: 0 valid, 1 invalid (the failed check is named), 2 usage or unreadable input.
Human lines go to stderr (Chinese and English); ``--json`` prints one result object on stdout.
The trust file is documented in docs/trust.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import codecs
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from evidence.commitment import DisclosureError
from evidence.disclosure import LeafView, digest_named, label, read_leaf, redact, verify_disclosures
from evidence.package import CHECKPOINT, MalformedPackageError, PackageSeen, read_package
from ledger import boundedjson
from ledger.checkpoint import open_checkpoint
from ledger.compact_receipt import MAGIC, from_compact, to_compact
from ledger.cosignature import require_quorum
from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256
from ledger.keys import KeyHistory, require_current
from ledger.note import Note
from ledger.proof import verify_consistency
from ledger.receipt import FORMAT_2, TLOG_PROOF, Receipt, Verified, verify_receipt
from ledger.suite import hasher_for_log
from ledger.trust import Trust, read_trust
from verifier.chain import check_rpc_url
from verifier.parts import check_anchor, check_timestamp, history_keys, log_keys
from verifier.result import Check, VerifyResult

LEAF_COMMITMENT_HASH = "sha256"  # sifa-leaf/2's commitments (evidence/salts.py), whatever the tree hash

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
        doc = boundedjson.loads(leaf_data)
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


def _read(path: Path, what: str, limit: int = boundedjson.MAX_BYTES) -> bytes:
    """The file's bytes, at most ``limit`` (a larger file is refused before it is read whole)."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise InputError(f"{what} {path} is over {limit} bytes")
    return data


def verify(file: Path | None, receipt_path: Path, trust_path: Path, keys_paths: Sequence[Path] = (),
           chain_rpc: str | None = None) -> VerifyResult:  # fmt: skip
    """Every check and its outcome; raises InputError for unreadable input.

    Every fact of the result is read from verified bytes (docs/verification.md says which from
    which), present only once those bytes verified.
    """
    trust = load_trust(trust_path)
    try:
        raw = _read(receipt_path, "receipt")
        if raw.startswith(MAGIC):  # the compact form (docs/receipt.md): it names its suite, as JSON does
            receipt = from_compact(raw)
        elif raw.startswith(TLOG_PROOF.encode()):  # names no suite: read again with the hash its log's key names
            receipt = Receipt.from_tlog_proof(raw)
            hasher = hasher_for_log(receipt.origin, trust.logs)
            if hasher is not SHA256:
                receipt = Receipt.from_tlog_proof(raw, hasher)
        else:
            receipt = Receipt.from_json(raw)
    except MalformedError as exc:
        binary = raw[:3] == MAGIC[:3] or (raw[:1] >= b"\x80" and not raw.startswith(codecs.BOM_UTF8))
        if binary and not raw.startswith(MAGIC):  # neither JSON nor a compact receipt: say what a receipt is
            raise InputError(f"{receipt_path} is not a receipt: a JSON receipt begins with '{{', a compact one "
                             f"with 'SIFR', a tlog-proof with '{TLOG_PROOF}'") from exc  # fmt: skip
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    try:
        digest = None if file is None else file_sha256(file)
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc
    result = VerifyResult()
    seen = Verified()
    try:  # the log keys: the trust file's, followed through the log's key history (docs/keys.md)
        keys = log_keys(receipt, trust, [_key_history(p) for p in keys_paths], result)
    except MalformedError as exc:
        raise InputError(f"key history: {exc.diagnostics()}") from exc
    if keys is None:
        return result
    try:
        proved = verify_receipt(receipt, keys, seen=seen)
    except MalformedError as exc:  # unreadable, not a finding: exit 2 (docs/errors.md), as everywhere else
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()} ({exc.code})") from exc
    except VerificationError as exc:
        _receipt_facts(result, seen)
        result.add(Check.failed("receipt", exc))
        return result
    _receipt_facts(result, seen)
    result.add(Check.passed("receipt", f"checkpoint signed by a trusted key of {proved.origin}; the leaf is proved "
                                       "included in it; the receipt's terms are the ones they state"))  # fmt: skip
    if not _witnessed(Note.from_text(receipt.checkpoint), trust, result):
        return result
    view = _leaf_v2(proved.leaf_data)
    if view is not None or receipt.disclosures:
        try:
            _disclosed(view, receipt, result)
        except (DisclosureError, MalformedError) as exc:
            result.add(Check.failed("disclosures", exc))
            return result
        shown = sum(1 for f in result.facts["fields"] if f["disclosed"])
        result.add(Check.passed("disclosures", f"{shown} disclosed field(s) open their commitments in the proved leaf; "
                                               f"{len(result.facts['fields']) - shown} not disclosed"))  # fmt: skip
    try:
        if not check_timestamp(receipt, proved, trust, keys, result):
            return result
        if not check_anchor(receipt, proved, trust, keys, chain_rpc, result):
            return result
    except MalformedError as exc:
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    if digest is not None:
        named = {f.sha256 for f in view.files} if view is not None else _leaf_file_hashes(_leaf(proved.leaf_data))
        ok = digest in named
        detail = f"SHA-256 {digest}" + (" is a file the proved leaf names" if ok else " is not a file the proved "
                                        "leaf names: this receipt is not for this file")  # fmt: skip
        if not result.add(Check("file_hash", ok, detail, code=None if ok else "file_not_in_receipt")):
            return result
        result.facts["file_sha256"] = digest
    result.valid = True
    return result


def _leaf_v2(leaf_data: bytes) -> LeafView | None:
    """The proved leaf, read strictly, if it is a ``sifa-leaf/2`` (None for a ``sifa-leaf/1`` envelope).

    Raises MalformedLeafError for a leaf that says it is one and is not."""
    doc = _leaf(leaf_data)
    if "format" not in doc:
        return None
    return read_leaf(leaf_data)


def _key_history(path: Path) -> KeyHistory:
    """A key history document (GET /v1/log/keys). Raises InputError."""
    try:
        return KeyHistory.from_dict(boundedjson.loads(_read(path, "key history")))
    except (ValueError, MalformedError) as exc:
        raise InputError(f"key history {path} is unreadable: {exc}") from exc


def _disclosed(view: LeafView | None, receipt: Receipt, result: VerifyResult) -> None:
    """Check every disclosure against the proved leaf's commitment of its path; put every committed
    field in the ``fields`` fact, its value only if a disclosure opened it. Raises DisclosureError."""
    if view is None:
        first = receipt.disclosures[0].get("path") if receipt.disclosures else None
        raise DisclosureError(
            "the proved leaf is a sifa-leaf/1 envelope: it has no commitments to disclose", path=first
        )
    # sifa-leaf/2 commits with SHA-256 on every log: a 国密 log's "log.hash" (sm3) names its tree hash only
    opened = verify_disclosures(view, receipt.disclosures or (), digest_named(LEAF_COMMITMENT_HASH))
    fields = []
    for path in sorted(view.commitments):
        field: dict[str, Any] = {"path": path, "label": label(path, view.type), "disclosed": path in opened}
        if path in opened:
            field["value"] = opened[path]
        fields.append(field)
    result.facts["fields"] = fields
    result.facts["files"] = [{"field": f.field, "sha256": f.sha256, "size": f.size} for f in view.files]


def _receipt_facts(result: VerifyResult, seen: Verified) -> None:
    """What verified: the checkpoint (log, tree size), then the proved leaf (its index, type,
    dossier, and the terms as the verified bytes state them)."""
    if seen.checkpoint is not None:
        result.facts.update(log=seen.checkpoint.origin, tree_size=seen.checkpoint.size)
    if seen.receipt is not None:
        leaf = _leaf(seen.receipt.leaf_data)
        result.facts.update(leaf_index=seen.receipt.leaf_index, item=leaf.get("type"), dossier=leaf.get("dossier"),
                            terms=seen.receipt.terms)  # fmt: skip


def _witnessed(note: Note, trust: Trust, result: VerifyResult) -> bool:
    """The trust file's witness quorum (none asked: nothing to check)."""
    if trust.quorum == 0:
        return True
    try:
        found = require_quorum(note, trust.witnesses, trust.quorum)
    except VerificationError as exc:
        return result.add(Check.failed("witnesses", exc))
    result.facts["witnesses"] = dict(sorted(found.items()))  # name -> the time it cosigned (Unix seconds)
    who = ", ".join(sorted(found))
    return result.add(Check.passed("witnesses", f"{len(found)} of {trust.quorum} required witnesses cosigned: {who}"))


def verify_consistency_files(old: Path, new: Path, proof_path: Path, trust_path: Path) -> VerifyResult:
    """Check that the log of NEW extends the log of OLD (never rewritten).

    Besides ``valid`` and ``checks``, the result holds each checkpoint's log and size once its
    signature verified (``old``, ``new``); ``log``, ``old_size`` and ``new_size`` when it is valid.
    """
    keys = load_trust(trust_path).logs
    result = VerifyResult()
    texts = {"old": _read(old, "checkpoint"), "new": _read(new, "checkpoint")}
    try:
        doc = boundedjson.loads(_read(proof_path, "proof"))
        hashes = doc["proof"] if isinstance(doc, dict) else doc
        proof = [base64.b64decode(h, validate=True) for h in hashes]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InputError(f"proof {proof_path} is not a list of base64 hashes: {exc}") from exc
    opened = {}
    for which, text in texts.items():
        try:
            opened[which], _ = open_checkpoint(text, keys)
        except MalformedError as exc:
            raise InputError(f"{which} checkpoint: {exc.diagnostics()}") from exc
        except VerificationError as exc:
            result.add(Check.failed(f"{which}_checkpoint_signature", exc))
            return result
        cp = opened[which]
        result.facts[which] = {"log": cp.origin, "size": cp.size}
        result.add(
            Check.passed(f"{which}_checkpoint_signature", f"{cp.origin} size {cp.size}, signed by a trusted key")
        )
    old_cp, new_cp = opened["old"], opened["new"]
    if old_cp.origin != new_cp.origin:
        result.add(
            Check("same_log", False, f"{old_cp.origin} and {new_cp.origin} are different logs", code="different_logs")
        )
        return result
    try:
        hasher = hasher_for_log(old_cp.origin, keys)
        verify_consistency(hasher, old_cp.size, new_cp.size, old_cp.root_hash, new_cp.root_hash, proof)
    except VerificationError as exc:
        result.add(Check.failed("consistency", exc))
        return result
    result.add(Check.passed("consistency", f"the log at size {new_cp.size} extends the log at size {old_cp.size}"))
    result.valid = True
    result.facts.update(log=old_cp.origin, old_size=old_cp.size, new_size=new_cp.size)
    return result


def verify_dossier(package_path: Path, trust_path: Path, *, progress: bool = False,
                   keys_paths: Sequence[Path] = ()) -> VerifyResult:  # fmt: skip
    """Verify a whole dossier package (docs/package.md): every event proved, every file's bytes.

    Every fact of the result is read from verified bytes (the signed checkpoint, the proved
    events), present only once those bytes verified.
    """
    trust = load_trust(trust_path)
    result = VerifyResult()

    def show(done: int, total: int) -> None:
        if progress and (done == total or done % (16 << 20) < CHUNK):
            bar = "#" * int(30 * done / max(total, 1))
            print(f"\r[{bar:<30}] {done >> 20}/{total >> 20} MiB", end="", file=sys.stderr, flush=True)

    seen = PackageSeen()
    try:  # the log keys, followed through the key history given with --keys (docs/keys.md)
        keys = history_keys(trust, [_key_history(p) for p in keys_paths], result)
    except MalformedError as exc:
        raise InputError(f"key history: {exc.diagnostics()}") from exc
    if keys is None:
        return result
    logs: list[Any] = keys
    try:
        with package_path.open("rb") as f:
            # A lawyer's copy withholds the 副卷's events (proved, not shown), and says how many.
            read_package(f, logs, witnesses=trust.witnesses, quorum=trust.quorum, progress=show, seen=seen,
                         limit=os.fstat(f.fileno()).st_size, withheld=True)  # fmt: skip
    except OSError as exc:
        raise InputError(f"cannot read package {package_path}: {exc.strerror or exc}") from exc
    except MalformedPackageError as exc:
        if progress:
            print(file=sys.stderr)
        raise InputError(f"package {package_path} is malformed: {exc.diagnostics()}") from exc
    except (VerificationError, MalformedError) as exc:
        if progress:
            print(file=sys.stderr)
        _package_facts(result, seen)
        result.add(Check.failed(str(exc.detail.get("check", "package")), exc))
        return result
    if progress:
        print(file=sys.stderr)
    _package_facts(result, seen)
    if seen.package is not None:  # a replaced key's checkpoint counts only proved extended (docs/keys.md)
        try:
            note = Note.from_text(seen.package.tags.get(CHECKPOINT, b"").decode("utf-8"))
            require_current(note, keys, None)
        except (VerificationError, MalformedError, UnicodeDecodeError) as exc:
            failed = exc if isinstance(exc, (VerificationError, MalformedError)) else MalformedError(str(exc))
            result.add(Check.failed("checkpoint", failed))
            return result
    result.valid = True
    return result


def _package_facts(result: VerifyResult, seen: PackageSeen) -> None:
    """What verified: the checkpoint, then the events (the dossier, its court and case number as its
    proved opening states them, the files its events name), then the files' bytes."""
    history = [c for c in result.checks if c.check == "key_history"]  # checked before the package
    result.checks = history + [Check.passed(c, d) for c, d in seen.checks]
    if seen.checkpoint is not None:
        result.facts.update(log=seen.checkpoint.origin, tree_size=seen.checkpoint.size)
    package = seen.package
    if package is not None:
        opened = package.events[0].doc
        result.facts.update(dossier=opened["dossier"], court=opened["body"].get("court"),
                            case_number=opened["body"].get("case_number"),
                            events=len(package.events) + len(package.withheld), withheld_events=len(package.withheld),
                            files=len(package.files), bytes=sum(package.files.values()))  # fmt: skip
        result.facts["files_verified"] = seen.files
    if seen.whole:
        result.add(Check.passed("file_bytes", f"all {seen.files} files hash to their names"))


def beijing(utc_text: str) -> str:
    """A UTC time as a person in China reads it: ``2026-11-22 16:30:00 北京时间 (UTC+8)``; the text as
    given if it is not one (the data, and ``--json``, stay UTC)."""
    try:
        moment = datetime.fromisoformat(utc_text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return str(utc_text)
    if moment.utcoffset() is None:
        return str(utc_text)
    return moment.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S") + " 北京时间 (UTC+8)"


def _facts(verified: VerifyResult) -> str:
    """The verified facts of a result, as one readable clause (never a value that did not verify)."""
    result = {"valid": verified.valid, **verified.facts}
    if "case_number" in result:
        # Only what the proved opening states: a missing case number or court is left out, never "?".
        who = " ".join(str(result[k]) for k in ("case_number",) if result.get(k)) or str(result.get("dossier", ""))
        court = f" of court {result['court']}" if result.get("court") else ""
        said = (
            f"卷宗 dossier {who}{court} ({result['log']}, 区块高度 {result['tree_size']}), "
            f"{result['events']} events proved, {result['files']} files named"
        )
        if result.get("withheld_events"):
            said += f" ({result['withheld_events']} events withheld from this copy: 副卷, proved only)"
        return said + ("" if result["valid"] else f", {result['files_verified']} of them verified")
    if "terms" in result:
        t, item = result["terms"], f" ({result['item']})" if result.get("item") else ""
        said = (f"{result['log']} 存证编号 {t['存证编号']}{item}, 存证时间 {beijing(t['存证时间'])}, "
                f"区块高度 {t['区块高度']}")  # fmt: skip
        if result.get("witnesses"):
            said += f", cosigned by {', '.join(result['witnesses'])}"
        if result.get("anchor"):
            a = result["anchor"]
            said += f", 链上锚定 anchored in block {a['block_number']} of chain {a['chain_id']} ({a['beijing']})"
        if result.get("trusted_time"):
            said += f", 可信时间 trusted time {result['trusted_time']['beijing']} (TSA {result['trusted_time']['tsa']})"
        return said
    if "new_size" in result:
        return f"log {result['log']} at size {result['new_size']} extends it at size {result['old_size']}"
    if "old" in result:
        return "; ".join(f"the {w} checkpoint ({result[w]['log']}, size {result[w]['size']}) is signed by a trusted key"
                         for w in ("old", "new") if w in result)  # fmt: skip
    if "log" in result:
        return f"checkpoint of {result['log']}, 区块高度 {result['tree_size']}, signed by a trusted key"
    return ""


def _report(result: VerifyResult, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    for c in result.checks:
        mark = "通过 passed" if c.ok else "未通过 FAILED"
        print(f"{c.check}: {mark} — {c.detail}", file=sys.stderr)
    for n in result.not_checked:
        print(f"{n['check']}: 未核验 not checked — {n['detail']}", file=sys.stderr)
    if result.valid and "fields" in result.facts:  # printed only once every disclosure opened its commitment
        for f in result.facts["fields"]:
            name = f"{f['label']} ({f['path']})" if f["label"] else f["path"]
            shown = f"{json.dumps(f['value'], ensure_ascii=False)} — 已核验 verified" if f["disclosed"] else (
                "未披露 / not disclosed")  # fmt: skip
            print(f"  {name}: {shown}", file=sys.stderr)
    facts = _facts(result)
    failed = result.failed
    if result.valid:
        print(f"有效 VALID: {facts}", file=sys.stderr)
    elif failed is not None:
        verified = f"verified {facts}" if facts else "nothing verified"
        about = failed.term if failed.term is not None else failed.path
        code = f"{failed.code}: {about}" if about is not None else failed.code
        print(f"无效 INVALID: {failed.check} failed ({code}); {verified}", file=sys.stderr)
    return 0 if result.valid else 1


def redact_receipt(receipt_path: Path, keep: Sequence[str], out: Path | None) -> int:
    """Write the receipt with only the disclosures ``keep`` names (path, ``parties/*/name`` pattern or
    label, e.g. 文件名); everything else as it was, in the form it came in (JSON or compact). Raises
    InputError."""
    raw = _read(receipt_path, "receipt")
    compact = raw.startswith(MAGIC)
    try:
        receipt = from_compact(raw) if compact else Receipt.from_json(raw)
    except MalformedError as exc:
        raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    if receipt.disclosures is None:
        raise InputError(f"receipt {receipt_path} is not {FORMAT_2}: it carries no disclosures to leave out")
    wanted = [k.strip() for item in keep for k in item.split(",") if k.strip()]
    doc = receipt.to_dict() if compact else boundedjson.loads(raw)
    event_type = _leaf(receipt.leaf_data).get("type")
    before = len(doc["disclosures"])
    doc["disclosures"] = redact(doc["disclosures"], wanted, event_type=event_type if isinstance(event_type, str)
                                else None)  # fmt: skip
    if compact:
        try:
            data = to_compact(receipt.with_disclosures(doc["disclosures"]))
        except MalformedError as exc:
            raise InputError(f"receipt {receipt_path}: {exc.diagnostics()}") from exc
    else:
        try:
            data = (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
        except UnicodeEncodeError as exc:  # a lone surrogate the receipt escaped (\ud800): no UTF-8 form
            raise InputError(f"receipt {receipt_path} holds a lone surrogate ({exc.object[exc.start]!r}), which "
                             "cannot be written as UTF-8") from exc  # fmt: skip
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from exc
    print(f"sifa-verify: kept {len(doc['disclosures'])} of {before} disclosures"
          + (f"; written to {out}" if out is not None else ""), file=sys.stderr)  # fmt: skip
    return 0


def _redact_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="sifa-verify redact", description="hand on a receipt with fewer disclosures")
    p.add_argument("receipt", type=Path)
    p.add_argument("--keep", action="append", default=[], help="a path, pattern or label to keep (repeatable)")
    p.add_argument("-o", "--output", type=Path, help="where to write the redacted receipt (default: stdout)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        return redact_receipt(args.receipt, args.keep, args.output)
    except InputError as exc:
        print(f"sifa-verify: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["redact"]:
        return _redact_main(argv[1:])
    if argv[:1] in (["compact"], ["expand"]):
        from verifier import convert

        return convert.main(argv[0], argv[1:])
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
        p.add_argument("--certificate", type=Path, help="a 存证证书 (PDF): its receipt and its printed fields")
        p.add_argument("--keys", type=Path, action="append", default=[],
                       help="the log's key history (GET /v1/log/keys), followed from the pinned key")  # fmt: skip
        p.add_argument("--chain-rpc", help="a chain node's JSON-RPC URL: check the receipt's chain anchor online")
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
            result = verify_dossier(args.dossier, args.trust, progress=sys.stderr.isatty() and not args.json,
                                    keys_paths=args.keys)  # fmt: skip
        elif args.certificate is not None:
            if args.receipt is not None:
                raise InputError("--certificate carries its own receipt; give no --receipt with it")
            from verifier.certificate import verify_certificate

            result = verify_certificate(args.certificate, args.file, args.trust)
        elif args.receipt is None:
            raise InputError("give --receipt RECEIPT (with or without FILE), or --dossier PACKAGE")
        else:
            if args.chain_rpc is not None:
                try:
                    check_rpc_url(args.chain_rpc)
                except ValueError as exc:
                    raise InputError(f"--chain-rpc: {exc}") from exc
            result = verify(args.file, args.receipt, args.trust, args.keys, args.chain_rpc)
    except InputError as exc:
        print(f"sifa-verify: {exc}", file=sys.stderr)
        return 2
    return _report(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
