"""Writes tests/vectors/disclosure/vectors.json: known answers for the ``sifa-leaf/2`` format.

    python -m tests.make_disclosure_vectors

Deterministic (a fixed demonstration secret — never use it for anything real — and fixed
events), so running it again reproduces the committed file byte for byte;
``tests/test_disclosure.py`` checks that, and checks every answer again with ``hmac`` and
``hashlib`` written out step by step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Any

from evidence.disclosure import build_leaf, commitment, disclosures_for, dossier_ref, event_key, event_salts

OUT = Path(__file__).parent / "vectors" / "disclosure" / "vectors.json"
SECRET = hashlib.sha256(b"sifa demonstration node secret").digest()  # 32 bytes, public on purpose
DOSSIER = "0b5a3c2e-7d41-5f6a-9c8e-1d2f3a4b5c6d"
ORIGIN = "sifa.court/1101-0105"
FILE = hashlib.sha256("（2026）京0105民初123号 借款合同扫描件\n".encode()).hexdigest()
EVENTS: list[dict[str, Any]] = [
    {"seq": 0, "position": 1, "version": 1, "type": "Opened", "time": "2026-11-22T08:30:00.000000Z",
     "body": {"court": "1101-0105", "case_number": "（2026）京0105民初123号", "case_type": "民事",
              "parties": [{"role": "原告", "kind": "natural", "name": "张三", "phone": "13800000000",
                           "salts": {"name": "00" * 32, "phone": "11" * 32}},
                          {"role": "被告", "kind": "legal", "name": "某某（Zoë）科技有限公司"}],
              "actor": "clerk:0001", "role": "clerk"}},
    {"seq": 1, "position": 2, "version": 2, "type": "DocumentUploaded", "time": "2026-11-22T08:31:00.250000Z",
     "body": {"document_id": "5f0c", "sha256": FILE, "size": 52, "name": "张三借款合同.pdf",
              "media_type": "application/pdf", "source": "当事人提交", "doc_type": "证据", "pages": None,
              "actor": "lawyer:0042", "role": "lawyer"}},
    {"seq": 2, "position": 3, "version": 3, "type": "DocumentReceived", "time": "2026-11-22T08:32:00.000001Z",
     "body": {"document_id": "a/b~c", "sha256": FILE, "size": 52, "name": "起诉状.pdf", "media_type": "application/pdf",
              "source": "法院制作", "doc_type": "", "pages": 3, "catalogue": {"volume": "正卷", "title": "起诉状",
              "order": 1, "pages": 3, "auto": True, "category": "起诉状"}, "original_leaf": 7, "actor": "clerk:0001",
              "role": "clerk", "tags": [], "note": {}, "x/y~z": "a key with / and ~"}},
]  # fmt: skip
COMMITMENTS = [("case_number", "（2026）京0105民初123号"), ("parties/0/name", "张三"), ("name", "张三"),
               ("pages", None), ("auto", True), ("order", -12), ("tags", []), ("note", {}),
               ("line", "tab\there \"quoted\" \\ \u2028 \x1f 😀")]  # fmt: skip


def build() -> str:
    """The vectors file's text."""
    salts = []
    for v, paths in [
        (1, ["case_number", "case_type", "parties/0/name"]),
        (2, ["case_number", "a~1b"]),
        (3, []),
        (4, ["z", "\uffff", "\U00020000"]),
    ]:  # UTF-16 order: U+20000 before U+FFFF
        derived = event_salts(SECRET, DOSSIER, v, paths)
        salts.append({"version": v, "event_key": event_key(SECRET, DOSSIER, v).hex(), "paths": list(derived),
                      "salts": [s.hex() for s in derived.values()]})  # fmt: skip
    commitments = []
    for n, (path, value) in enumerate(COMMITMENTS):
        salt = hashlib.sha256(b"salt %d" % n).digest()[:16]
        commitments.append({"path": path, "value": value, "salt": base64.b64encode(salt).decode(),
                            "commitment": commitment(path, value, salt)})  # fmt: skip
    leaves, prev = [], None
    for e in EVENTS:
        data = build_leaf(origin=ORIGIN, dossier=DOSSIER, prev=prev, secret=SECRET, **e)
        shown = disclosures_for(e["body"], secret=SECRET, dossier=DOSSIER, version=e["version"])
        leaves.append({"input": {"origin": ORIGIN, "dossier": DOSSIER, "prev": prev.hex() if prev else None, **e},
                       "leaf": data.decode("utf-8"), "leaf_hash": hashlib.sha256(b"\x00" + data).hexdigest(),
                       "disclosures": [d.to_json() for d in shown]})  # fmt: skip
        prev = hashlib.sha256(b"\x00" + data).digest()

    def pick(leaf: int, path: str) -> dict[str, Any]:
        return next(d for d in leaves[leaf]["disclosures"] if d["path"] == path)

    good = pick(1, "name")
    legal = pick(0, "parties/1/name")
    mismatches = [
        {"why": "changed value", "leaf": 1, "disclosure": {**good, "value": "李四借款合同.pdf"}},
        {"why": "changed salt", "leaf": 1, "disclosure": {**good, "salt": base64.b64encode(bytes(16)).decode()}},
        {"why": "moved to another field", "leaf": 1, "disclosure": {**good, "path": "source"}},
        {"why": "unknown path", "leaf": 1, "disclosure": {**good, "path": "title"}},
        {"why": "NFD instead of NFC", "leaf": 0,
         "disclosure": {**legal, "value": unicodedata.normalize("NFD", legal["value"])}},
    ]  # fmt: skip
    first = json.loads(leaves[0]["leaf"])
    malformed = [
        {"why": "not canonical (spaces)", "leaf": json.dumps(first, ensure_ascii=False, sort_keys=True)},
        {"why": "a key no sifa-leaf/2 has (a clear body)",
         "leaf": _canonical({**first, "body": {"case_number": "（2026）京0105民初123号"}})},
        {"why": "the dossier's uuid instead of its reference", "leaf": _canonical({**first, "dossier": DOSSIER})},
        {"why": "an unknown format", "leaf": _canonical({**first, "format": "sifa-leaf/3"})},
        {"why": "a path not escaped as RFC 6901 does", "leaf": _canonical({**first, "commitments": {"a~2": "0" * 64}})},
    ]  # fmt: skip
    doc = {
        "about": "sifa-leaf/2 known answers; docs/privacy.md; demonstration secret only",
        "secret": SECRET.hex(),
        "dossier": DOSSIER,
        "dossier_ref": dossier_ref(SECRET, DOSSIER),
        "salts": salts,
        "commitments": commitments,
        "leaves": leaves,
        "mismatches": [{**m, "code": "disclosure_mismatch"} for m in mismatches],
        "malformed": [{**m, "code": "malformed_leaf"} for m in malformed],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _canonical(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # ASCII keys: RFC 8785


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(build(), encoding="utf-8")


if __name__ == "__main__":
    main()
