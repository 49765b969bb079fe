"""Writes tests/vectors/receipts/: a valid receipt and one broken case per check.

The first receipts are ``sifa-receipt/1`` of ``sifa-leaf/1``-shaped leaves (the old format, still
read); the ``v2-*`` ones are ``sifa-receipt/2`` of a ``sifa-leaf/2`` leaf appended after them:
valid with every disclosure, redacted to the file name, none disclosed, and a disclosure that does
not open its commitment.

    python -m tests.make_receipt_vectors

Deterministic (fixed demonstration keys, fixed leaves, Ed25519 is deterministic),
so running it again reproduces the committed files byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

from evidence.disclosure import build_leaf, disclosures_for
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import CosignatureSigner
from ledger.keys import LABEL as KEY_LABEL
from ledger.keys import rotation_leaf
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note, NoteSignature, add_signatures
from ledger.receipt import Receipt
from ledger.sqlite import SQLiteTreeStore

OUT = Path(__file__).parent / "vectors" / "receipts"
TSA = Path(__file__).parent / "vectors" / "tsa"
ORIGIN = "sifa.court/1101-0105"
EVIDENCE = "（2026）京0105民初123号 借款合同扫描件\n".encode()
WHEN = "2026-11-22T08:30:00.000000Z"
SECRET = hashlib.sha256(b"sifa demonstration node secret").digest()  # demonstration only
DOSSIER = "0b5a3c2e-7d41-5f6a-9c8e-1d2f3a4b5c6d"


def leaf(i: int, sha: str | None = None) -> bytes:
    body = {"sha256": sha or hashlib.sha256(b"%d" % i).hexdigest(), "size": i, "name": f"文件{i}.pdf"}
    doc = {"origin": ORIGIN, "seq": i, "type": "DocumentUploaded", "time": WHEN, "body": body}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    log_key = Ed25519Signer(ORIGIN, bytes(range(32)))
    stranger = Ed25519Signer(ORIGIN, bytes(range(1, 33)))
    log = MerkleLog(SQLiteTreeStore(":memory:"))
    log.append([leaf(i, hashlib.sha256(EVIDENCE).hexdigest() if i == 5 else None) for i in range(11)])
    log.sign_checkpoint(log_key)
    valid = log.receipt(5, WHEN).to_dict()
    cases: dict[str, dict[str, object]] = {}

    def write(name: str, doc: object, *, file: str | None, exit: int, code: str | None) -> None:
        text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
        cases[name] = {"file": file, "exit": exit, "code": code}

    (OUT / "evidence.txt").write_bytes(EVIDENCE)
    (OUT / "evidence-altered.txt").write_bytes(EVIDENCE.replace("借款".encode(), "还款".encode()))
    trust = {"format": "sifa-trust/1", "logs": [{"origin": ORIGIN, "name": "北京市朝阳区人民法院（示例）",
                                                 "key": log_key.verifier.vkey()}]}  # fmt: skip
    (OUT / "trust.json").write_text(json.dumps(trust, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    write("valid", valid, file="evidence.txt", exit=0, code=None)
    write("valid-receipt-only", valid, file=None, exit=0, code=None)
    cases["wrong-file"] = {"file": "evidence-altered.txt", "exit": 1, "code": "file_not_in_receipt",
                           "receipt": "valid"}  # fmt: skip

    flipped = json.loads(json.dumps(valid))
    h = bytearray(base64.b64decode(flipped["inclusion_proof"][1]))
    h[7] ^= 0x10
    flipped["inclusion_proof"][1] = base64.b64encode(bytes(h)).decode()
    write("flipped-proof-bit", flipped, file=None, exit=1, code="inclusion_proof_invalid")

    wrong_index = json.loads(json.dumps(valid))
    wrong_index["leaf_index"] = 4
    wrong_index["terms"]["存证编号"] = f"{ORIGIN}#4"
    write("wrong-index", wrong_index, file=None, exit=1, code="inclusion_proof_invalid")

    wrong_size = json.loads(json.dumps(valid))
    wrong_size["tree_size"] = 12
    write("wrong-size", wrong_size, file=None, exit=1, code="receipt_mismatch")

    # One edited term each: the rest of the receipt verifies, the term is not what the verified bytes say.
    leaf_hash = valid["terms"]["交易哈希"]
    for name, term, value in (
        ("edited-record-id", "存证编号", f"{ORIGIN}#6"),
        ("edited-height", "区块高度", 12),
        ("edited-leaf-hash", "交易哈希", leaf_hash[:-1] + ("0" if leaf_hash[-1] != "0" else "1")),
        ("edited-time", "存证时间", "2027-01-01T00:00:00Z"),
    ):
        edited = json.loads(json.dumps(valid))
        edited["terms"][term] = value
        write(name, edited, file="evidence.txt", exit=1, code="receipt_mismatch")
        cases[name].update(term=term, edited=value)

    unknown = json.loads(json.dumps(valid))
    unknown["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, 11, log.root(11)), stranger).to_text()
    write("unknown-key", unknown, file=None, exit=1, code="checkpoint_unknown_key")

    spliced = json.loads(json.dumps(valid))
    other = sign_checkpoint(Checkpoint(ORIGIN, 10, log.root(10)), log_key)
    spliced["checkpoint"] = Checkpoint(ORIGIN, 11, log.root(11)).to_text() + "\n" + other.signatures[0].line()
    write("signature-over-different-note", spliced, file=None, exit=1, code="checkpoint_signature_invalid")

    # The same proof as C2SP tlog-proof text.
    proof = Receipt.from_json(json.dumps(valid)).to_tlog_proof()
    (OUT / "valid.tlog-proof").write_text(proof, encoding="utf-8")
    cases["valid-tlog-proof"] = {"file": "evidence.txt", "exit": 0, "code": None, "receipt_file": "valid.tlog-proof"}
    (OUT / "wrong-index.tlog-proof").write_text(proof.replace("\nindex 5\n", "\nindex 4\n"), encoding="utf-8")
    cases["tlog-proof-wrong-index"] = {"file": None, "exit": 1, "code": "inclusion_proof_invalid",
                                       "receipt_file": "wrong-index.tlog-proof"}  # fmt: skip

    text = json.dumps(valid, ensure_ascii=False, indent=2)
    write("truncated", text[: len(text) // 2], file=None, exit=2, code=None)
    future = json.loads(json.dumps(valid))
    future["format"] = "sifa-receipt/9"
    write("unknown-format", future, file=None, exit=2, code=None)

    # Witnessed: three witnesses, two required (trust-witnessed.json).
    witnesses = [CosignatureSigner(f"sifa.witness/demo-{i}", bytes([0x40 + i]) * 32) for i in range(3)]
    witnessed = {**trust, "witnesses": [{"name": f"见证节点{i}（示例）", "key": w.verifier.vkey()}
                                        for i, w in enumerate(witnesses)], "quorum": 2}  # fmt: skip
    (OUT / "trust-witnessed.json").write_text(json.dumps(witnessed, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")  # fmt: skip
    note = Note.from_text(log.store.checkpoint()[1])  # type: ignore[index]

    def cosigned(*signers: CosignatureSigner, forge: bool = False) -> dict[str, object]:
        lines = [w.cosign(note.text, 1_795_000_000 + i) for i, w in enumerate(signers)]
        if forge:  # a trusted witness's line over another time: the signature does not verify
            first = lines[0]
            lines[0] = NoteSignature(first.name, first.key_id, (1).to_bytes(8, "big") + first.signature[8:])
        log.store.save_checkpoint(note_size, add_signatures(note, lines).to_text())
        return log.receipt(5, WHEN).to_dict()

    note_size = Checkpoint.from_text(note.text).size
    for name, doc, exit_, code in (
        ("witnessed-valid", cosigned(witnesses[0], witnesses[2]), 0, None),
        ("missing-cosignatures", cosigned(witnesses[1]), 1, "witness_quorum_missing"),
        ("forged-cosignature", cosigned(witnesses[0], witnesses[1], forge=True), 1, "checkpoint_signature_invalid"),
    ):
        write(name, doc, file="evidence.txt", exit=exit_, code=code)
        cases[name]["trust"] = "trust-witnessed.json"
    cases["not-witnessed"] = {"file": None, "exit": 1, "code": "witness_quorum_missing", "receipt": "valid",
                              "trust": "trust-witnessed.json"}  # fmt: skip

    key_cases(log_key, trust, write, cases)
    time_and_anchor_cases(log, log_key, valid, trust, write, cases)  # before v2_cases grows the log: token.der
    cases["old-format"] = {"file": "evidence.txt", "exit": 0, "code": None, "receipt": "valid"}  # sifa-receipt/1
    v2_cases(log, log_key, write, cases)
    compact_cases(cases)
    (OUT / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    certificates()


def certificates() -> None:
    """存证证书 cases (certificates.json), each PDF signed by the log's key as a node signs it (its last
    line): the valid receipt's certificate; one the court signed with a misprinted time or witness line,
    or an extra verified line the verifier does not compute (``certificate_mismatch``, the second
    check); and forgeries of the valid one: its bytes edited after signing, an incremental update
    appended, its signature line removed (``certificate_signature_invalid``, the first check). The
    PDFs embed the machine's CJK font (dossier/certificate.py): another font gives other bytes, the
    same verdicts."""
    from datetime import UTC, datetime

    from dossier.certificate import render
    from evidence.certificate import SIGNATURE_PREFIX, TIME_BEIJING, WITNESSES, lines
    from ledger.cosignature import cosigners
    from ledger.receipt import verify_receipt
    from ledger.trust import read_trust

    log_key = Ed25519Signer(ORIGIN, bytes(range(32)))
    created = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    declared = {"存证法院": "北京市朝阳区人民法院（示例）", "案号": "（2026）京0105民初123号"}
    url = "https://court.example/verify?record=sifa.court%2F1101-0105%235"
    cases: dict[str, dict[str, object]] = {}

    def printed_of(source: str, trust: str) -> tuple[bytes, object]:
        raw = (OUT / f"{source}.json").read_bytes()
        receipt = Receipt.from_json(raw)
        keys = read_trust(OUT / f"{trust}.json")
        proved = verify_receipt(receipt, keys.logs)
        return raw, lines(proved, cosigners(Note.from_text(receipt.checkpoint), keys.witnesses), declared)

    for name, source, trust, edits, exit_, code in (
        ("certificate-valid", "valid", "trust", {}, 0, None),
        ("certificate-edited-time", "valid", "trust", {TIME_BEIJING: "2019-01-01 08:00:00"}, 1, "certificate_mismatch"),
        ("certificate-witnessed", "witnessed-valid", "trust-witnessed", {}, 0, None),
        ("certificate-edited-witnesses", "witnessed-valid", "trust-witnessed",
         {WITNESSES: "sifa.witness/demo-0 2026-11-22 16:30:00"}, 1, "certificate_mismatch"),
        ("certificate-extra-line", "valid", "trust", {"备注": "本文件为生效判决书"}, 1, "certificate_mismatch"),
    ):  # fmt: skip
        raw, printed = printed_of(source, trust)
        shown = printed.verified  # type: ignore[attr-defined]
        for label, value in edits.items():  # an edited line in place; a new one after 记录类型
            if label in shown:
                shown[label] = value
            else:
                at_item = list(shown).index("记录类型") + 1
                items = list(shown.items())
                shown.clear()
                shown.update([*items[:at_item], (label, value), *items[at_item:]])
        pdf = render(printed, raw, url, court_name="北京市朝阳区人民法院（示例）", signer=log_key, created=created)  # type: ignore[arg-type]
        (OUT / f"{name}.pdf").write_bytes(pdf)
        cases[name] = {"file": "evidence.txt", "trust": f"{trust}.json", "exit": exit_, "code": code,
                       **({"term": next(iter(edits))} if edits else {})}  # fmt: skip
    valid = (OUT / "certificate-valid.pdf").read_bytes()
    at = valid.rindex(SIGNATURE_PREFIX)
    raw, printed = printed_of("valid", "trust")
    printed.verified[TIME_BEIJING] = "2019-01-01 08:00:00"  # type: ignore[attr-defined]
    reprinted = render(printed, raw, url, court_name="北京市朝阳区人民法院（示例）", signer=log_key, created=created)  # type: ignore[arg-type]
    for name, forged in (
        ("certificate-resigned-line", reprinted[: reprinted.rindex(SIGNATURE_PREFIX)] + valid[at:]),
        ("certificate-appended", valid + b"1 0 obj\n<< >>\nendobj\nstartxref\n0\n%%EOF\n"),
        ("certificate-unsigned", valid[:at]),
    ):
        (OUT / f"{name}.pdf").write_bytes(forged)
        cases[name] = {"file": "evidence.txt", "trust": "trust.json", "exit": 1,
                       "code": "certificate_signature_invalid"}  # fmt: skip
    (OUT / "certificates.json").write_text(json.dumps(cases, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def v2_cases(log: MerkleLog, log_key: Ed25519Signer, write: Any, cases: dict[str, dict[str, object]]) -> None:
    """A sifa-leaf/2 leaf (the evidence file uploaded again, in another dossier) and its receipts."""
    body = {"document_id": "d2", "sha256": hashlib.sha256(EVIDENCE).hexdigest(), "size": len(EVIDENCE),
            "name": "张三借款合同.pdf", "media_type": "application/pdf", "source": "lawyer", "doc_type": "证据",
            "pages": 2, "actor": "clerk:demo-7", "role": "clerk"}  # fmt: skip
    index = log.size
    data = build_leaf(origin=ORIGIN, seq=index, position=index + 1, dossier=DOSSIER, version=2,
                      type="DocumentUploaded", time=WHEN, prev=hashlib.sha256(b"demo prev").digest(), body=body,
                      secret=SECRET)  # fmt: skip
    log.append([data])
    log.sign_checkpoint(log_key)
    shown = [d.to_json() for d in disclosures_for(body, secret=SECRET, dossier=DOSSIER, version=2)]
    receipt = log.receipt(index, WHEN).with_disclosures(shown).to_dict()
    write("v2-valid", receipt, file="evidence.txt", exit=0, code=None)
    write("v2-redacted", {**receipt, "disclosures": [d for d in shown if d["path"] == "name"]}, file="evidence.txt",
          exit=0, code=None)  # fmt: skip
    write("v2-none-disclosed", {**receipt, "disclosures": []}, file=None, exit=0, code=None)
    changed = [{**d, "value": "李四借款合同.pdf"} if d["path"] == "name" else d for d in shown]
    write("v2-disclosure-mismatch", {**receipt, "disclosures": changed}, file="evidence.txt", exit=1,
          code="disclosure_mismatch")  # fmt: skip
    cases["v2-disclosure-mismatch"].update(path="name", edited="李四借款合同.pdf")
    for name in ("v2-valid", "v2-redacted", "v2-none-disclosed", "v2-disclosure-mismatch"):
        cases[name]["terms_of"] = "v2-valid"


def compact_cases(cases: dict[str, dict[str, object]]) -> None:
    """The compact form (docs/receipt.md, ledger/compact_receipt.py) of receipts above, verified as their
    JSON is; one altered proof hash (exit 1); and hostile bytes, each refused with one line (exit 2)."""
    from ledger.compact_receipt import to_compact

    def compact(source: str) -> bytes:
        return to_compact(Receipt.from_json((OUT / f"{source}.json").read_bytes()))

    for name, source, extra in (
        ("compact-valid", "valid", {"file": "evidence.txt"}),
        ("compact-witnessed", "witnessed-valid", {"file": "evidence.txt", "trust": "trust-witnessed.json"}),
        ("compact-v2", "v2-valid", {"file": "evidence.txt", "terms_of": "v2-valid"}),
        ("compact-v2-none-disclosed", "v2-none-disclosed", {"file": None, "terms_of": "v2-valid"}),
        ("compact-timestamp", "timestamp-valid", {"file": "evidence.txt", "trust": "trust-tsa.json"}),
    ):
        (OUT / f"{name}.bin").write_bytes(compact(source))
        cases[name] = {"exit": 0, "code": None, **extra, "receipt_file": f"{name}.bin", "json": source}
    valid = compact("valid")  # deflated: its body is smaller so
    raw = to_compact(Receipt.from_json((OUT / "valid.json").read_bytes()), deflate=False)
    (OUT / "compact-valid-not-deflated.bin").write_bytes(raw)
    cases["compact-valid-not-deflated"] = {"file": "evidence.txt", "exit": 0, "code": None, "json": "valid",
                                           "receipt_file": "compact-valid-not-deflated.bin"}  # fmt: skip
    proof_at = 7  # magic, version, suite, flags; then the proof's count byte (docs/receipt.md, the layout)
    body_at = proof_at + 1 + 32 * raw[proof_at]
    leaf_len = int.from_bytes(raw[body_at + 8 : body_at + 10], "big")
    checkpoint_at = body_at + 10 + leaf_len
    flipped = bytearray(valid)
    flipped[proof_at + 1 + 32 + 7] ^= 0x10  # the second proof hash, as flipped-proof-bit.json
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    hostile: dict[str, bytes] = {
        "compact-truncated": valid[: len(valid) // 2],
        "compact-trailing-bytes": valid + b"\x00",
        "compact-trailing-bytes-not-deflated": raw + b"\x00",
        "compact-wrong-magic": b"SIFX" + valid[4:],
        "compact-unknown-version": valid[:4] + b"\x02" + valid[5:],
        "compact-unknown-flags": valid[:6] + bytes([valid[6] | 0x80]) + valid[7:],
        "compact-leaf-longer-than-file": raw[: body_at + 8] + b"\xff\xff" + raw[body_at + 10 :],
        "compact-proof-of-255-hashes": valid[:proof_at] + b"\xff" + valid[proof_at + 1 :],
        "compact-checkpoint-length-4-gib": raw[:checkpoint_at] + b"\xff\xff\xff\xff" + raw[checkpoint_at + 4 :],
        "compact-checkpoint-not-utf8": raw[:checkpoint_at + 4] + b"\xff" + raw[checkpoint_at + 5 :],
        "compact-not-deflate": raw[:6] + bytes([raw[6] | 0x04]) + raw[7:],
        "compact-deflate-bomb": raw[:6] + bytes([raw[6] | 0x04]) + raw[7:body_at]
                                + bomb.compress(bytes(2 << 20)) + bomb.flush(),
    }  # fmt: skip
    (OUT / "compact-flipped-proof-bit.bin").write_bytes(bytes(flipped))
    cases["compact-flipped-proof-bit"] = {"file": None, "exit": 1, "code": "inclusion_proof_invalid",
                                          "receipt_file": "compact-flipped-proof-bit.bin"}  # fmt: skip
    for name, data in hostile.items():
        (OUT / f"{name}.bin").write_bytes(data)
        cases[name] = {"file": None, "exit": 2, "code": None, "receipt_file": f"{name}.bin"}


def key_cases(
    log_key: Ed25519Signer, trust: dict[str, object], write: Any, cases: dict[str, dict[str, object]]
) -> None:
    """Key history (docs/keys.md): the same leaf 5 and tree size 11, in logs whose key was rotated
    at leaf 6 (and again at leaf 8); each receipt verifies with trust.json, which pins the first key."""
    second, third = Ed25519Signer(ORIGIN, bytes(range(2, 34))), Ed25519Signer(ORIGIN, bytes(range(3, 35)))
    evidence = hashlib.sha256(EVIDENCE).hexdigest()

    def rotated(*steps: tuple[int, Ed25519Signer, Ed25519Signer, int | None]) -> MerkleLog:
        log = MerkleLog(SQLiteTreeStore(":memory:"))
        turns = {at: (old, new, bad) for at, old, new, bad in steps}
        entries = [rotation_leaf(*turns[i][:2], i, WHEN, turns[i][2]) if i in turns else
                   leaf(i, evidence if i == 5 else None) for i in range(11)]  # fmt: skip
        labels = [[KEY_LABEL] if i in turns else [] for i in range(11)]
        log.append(entries, labels=labels)
        log.sign_checkpoint(steps[-1][2])
        return log

    write("keys-second-era", rotated((6, log_key, second, None)).receipt(5, WHEN).to_dict(), file="evidence.txt",
          exit=0, code=None)  # fmt: skip
    write("keys-third-era", rotated((6, log_key, second, None), (8, second, third, None)).receipt(5, WHEN).to_dict(),
          file="evidence.txt", exit=0, code=None)  # fmt: skip
    stranger = Ed25519Signer(ORIGIN, bytes(range(1, 33)))
    write("keys-rotation-by-a-stranger", rotated((6, stranger, second, None)).receipt(5, WHEN).to_dict(), file=None,
          exit=1, code="key_history_invalid")  # fmt: skip
    # The first key, marked compromised from leaf 6 by the rotation; a checkpoint it signs of size 11
    # (the thief's) is refused, by the history the node publishes and by a trust file that says so.
    honest = rotated((6, log_key, second, 6))
    forged = honest.receipt(5, WHEN).to_dict()
    forged["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, 11, honest.root(11)), log_key).to_text()
    write("keys-signed-after-compromise", forged, file=None, exit=1, code="log_key_not_valid")
    marked = {**trust, "logs": [{**trust["logs"][0], "compromised_from": 6}]}  # type: ignore[index]
    (OUT / "trust-compromised.json").write_text(json.dumps(marked, ensure_ascii=False, indent=2) + "\n",
                                                encoding="utf-8")  # fmt: skip
    cases["keys-compromised-in-trust-file"] = {"file": None, "exit": 1, "code": "log_key_not_valid",
                                               "receipt": "valid", "trust": "trust-compromised.json"}  # fmt: skip


def time_and_anchor_cases(log: MerkleLog, log_key: Ed25519Signer, valid: dict[str, Any], trust: dict[str, Any],
                          write: Any, cases: dict[str, dict[str, object]]) -> None:  # fmt: skip
    """Trusted time (docs/time.md) with a token a test TSA made once for this corpus's checkpoint of
    size 11 (tests/vectors/tsa/, kept as data: a TSA's token carries its own time), and a chain
    anchor claim, checked offline only (docs/anchoring.md)."""
    token = base64.b64encode((TSA / "token.der").read_bytes()).decode()
    stamped = {**valid, "timestamp": {"checkpoint": valid["checkpoint"], "inclusion_proof": valid["inclusion_proof"],
                                      "token": token}}  # fmt: skip
    with_tsa = {**trust, "tsa": [{"name": "测试时间戳服务（示例）", "certificate": (TSA / "tsa-ca.pem").read_text()}]}
    (OUT / "trust-tsa.json").write_text(json.dumps(with_tsa, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write("timestamp-valid", stamped, file="evidence.txt", exit=0, code=None)
    cases["timestamp-valid"]["trust"] = "trust-tsa.json"
    cases["timestamp-not-checked"] = {"file": None, "exit": 0, "code": None, "receipt": "timestamp-valid"}
    # The same token, carried with the checkpoint of size 10: it stamps another checkpoint.
    other = sign_checkpoint(Checkpoint(ORIGIN, 10, log.root(10)), log_key).to_text()
    proof = [base64.b64encode(h).decode() for h in log.inclusion_proof(5, 10)]
    moved = {**valid, "timestamp": {"checkpoint": other, "inclusion_proof": proof, "token": token}}
    write("timestamp-for-another-checkpoint", moved, file=None, exit=1, code="timestamp_invalid")
    cases["timestamp-for-another-checkpoint"]["trust"] = "trust-tsa.json"
    anchored = {**valid, "anchor": {"kind": "evm", "chain_id": 1337, "contract": "0x" + "5a" * 20,
                                    "tx_hash": "0x" + "c3" * 32, "block_number": 812, "checkpoint": valid["checkpoint"],
                                    "inclusion_proof": valid["inclusion_proof"]}}  # fmt: skip
    write("anchor-offline", anchored, file="evidence.txt", exit=0, code=None)


if __name__ == "__main__":
    main()
