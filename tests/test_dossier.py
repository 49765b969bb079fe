"""The event-sourced dossier sealed into the ledger, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from dossier.catalogue import pdf_info, place
from dossier.envelope import read_leaf
from dossier.errors import (
    DossierArchivedError,
    DossierConflictError,
    DossierExistsError,
    DossierNotFoundError,
    InvalidDossierInputError,
    UnknownCourtError,
    UnknownDocumentError,
)
from evidence.commitment import DisclosureError
from evidence.disclosure import dossier_ref, verify_disclosures
from evidence.disclosure import read_leaf as read_v2
from ledger.receipt import Receipt, verify_receipt
from tests.dossier_fixtures import Stack, pdf_bytes

CASE = "（2026）京0105民初123号"
PARTY = {"role": "原告", "name": "张三丰", "id_number": "110101199001011234", "phone": "13800138000",
         "address": "北京市朝阳区建国路88号"}  # fmt: skip
ACT = {"actor": "clerk:li", "role": "clerk"}


def test_life_of_a_dossier_sealed_with_receipts(stack: Stack) -> None:
    app, sealer = stack.app, stack.sealer
    d = app.open_dossier(case_number_text=CASE, case_type="民事", parties=[PARTY], **ACT)
    complaint = app.upload(d, io.BytesIO(pdf_bytes(3)), name="民事起诉状（张三丰）.pdf", media_type="application/pdf",
                           source="lawyer", doc_type=None, **ACT)  # fmt: skip
    assert (complaint["pages"], complaint["category"], complaint["placed_by"]) == (3, "起诉状", "file name")
    scan = app.upload(d, iter([b"scan"]), name="IMG_0001.jpg", media_type="image/jpeg", source="court",
                      doc_type="庭审笔录", **ACT)  # fmt: skip
    assert (scan["category"], scan["placed_by"]) == ("庭审笔录", "declared")
    app.catalogue(d, document_id=scan["document_id"], volume="副卷", category="审理报告", order=110,
                  title="合议庭评议笔录", pages=1, **ACT)  # fmt: skip
    evidence = hashlib.sha256(b"contract scan").hexdigest()
    app.submit_evidence(d, sha256=evidence, size=13, name="借款合同.pdf", submitter=PARTY,
                        description="借款合同原件扫描", **ACT)  # fmt: skip
    app.record_service(d, document_id=complaint["document_id"], recipient={"role": "被告", "name": "李四"},
                       channel="电子送达平台", sent_at="2026-11-22T08:00:00Z", delivered_at="2026-11-22T08:01:00Z",
                       read_at=None, receipt_sha256=None, **ACT)  # fmt: skip
    app.register_contract(d, contract_sha256=evidence, parties=[PARTY, {"role": "被告", "name": "李四"}],
                          signed_at="2026-01-02T03:04:05Z", **ACT)  # fmt: skip
    app.transfer(d, to_court="1101-0200", kind="上诉", reason="被告不服一审判决，提起上诉", **ACT)
    app.retrieve(d, by_court="1101-0200", by="judge:wang", reason="二审调阅", **ACT)
    app.archive(d, retention="永久", package_sha256=hashlib.sha256(b"package").hexdigest(), **ACT)

    dossier = app.get(d)
    assert dossier.case_number == CASE and dossier.version == 12
    assert sealer.seal() == 12
    assert stack.log.size == 12
    # Leaves == events, one to one, in order, each dossier a hash chain.
    prev = None
    for version in range(1, 13):
        [index] = stack.log.find(f"event:{d}:{version}")
        leaf = read_leaf(stack.log.entry(index))
        assert (leaf["seq"], leaf["version"], leaf["dossier"]) == (index, version, dossier_ref(sealer.secret, d))
        assert leaf["prev"] == prev
        prev = stack.log.leaf_hash(index).hex()
        receipt = Receipt.from_json(sealer.receipt_for_event(str(d), version).to_json())
        verify_receipt(receipt, [stack.signer.verifier])
        assert receipt.recorded_at == leaf["time"]
        # staff's receipt opens every committed field of the leaf
        opened = verify_disclosures(read_v2(receipt.leaf_data), receipt.disclosures or ())
        assert set(opened) == set(leaf["commitments"])
    first = read_leaf(stack.log.entry(0))
    assert CASE.encode() not in stack.log.entry(0) and first["type"] == "Opened"
    opening = sealer.receipt_for_event(str(d), 1)
    assert verify_disclosures(read_v2(opening.leaf_data), opening.disclosures or ())["case_number"] == CASE
    assert len(sealer.receipts_for_file(complaint["sha256"])) == 1
    assert len(sealer.receipts_for_file(evidence)) == 2  # evidence and contract name the same file
    assert sealer.seal() == 0  # nothing sealed twice


def test_personal_data_never_in_a_leaf_but_commitments_prove_it(stack: Stack, tmp_path: Path) -> None:
    d = stack.app.open_dossier(case_number_text=CASE, case_type="民事", parties=[PARTY], **ACT)
    stack.sealer.seal()
    leaf = stack.log.entry(0)
    for value in (PARTY["name"], PARTY["id_number"], PARTY["phone"], PARTY["address"], "张三"):
        assert value.encode() not in leaf
    stored = stack.app.get(d).parties[0]  # the encrypted event, decrypted by the node
    receipt = stack.sealer.receipt_for_event(str(d), 1)
    opened = verify_disclosures(read_v2(leaf), receipt.disclosures or ())
    for field in ("name", "id_number", "phone", "address"):
        assert opened[f"parties/0/{field}"] == stored[field]
    forged = [{**x, "value": "张三"} if x["path"] == "parties/0/name" else x for x in receipt.disclosures or ()]
    with pytest.raises(DisclosureError):
        verify_disclosures(read_v2(leaf), forged)
    events_db = tmp_path / "events.sqlite"
    if events_db.exists():  # at rest, the event store holds ciphertext only
        assert PARTY["name"].encode() not in events_db.read_bytes()


def test_rules_the_aggregate_enforces(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text=CASE, case_type="民事", parties=[], **ACT)
    with pytest.raises(DossierExistsError):
        app.open_dossier(case_number_text=CASE, case_type="民事", parties=[], **ACT)
    with pytest.raises(UnknownCourtError):
        app.transfer(d, to_court="9999-0000", kind="上诉", reason="x", **ACT)
    with pytest.raises(InvalidDossierInputError):
        app.transfer(d, to_court="1101-0200", kind="上诉", reason="  ", **ACT)
    with pytest.raises(UnknownDocumentError):
        app.withdraw(d, document_id="nope", reason="错误上传", **ACT)
    # Full-width digits, brackets, spaces and leading zeros are one case number (issue 19): the same case.
    with pytest.raises(DossierExistsError):
        app.open_dossier(case_number_text=" (２０２６) 京0105民初0123号", case_type="民事", parties=[], **ACT)
    for bad in ("2026京0105民初123号", "（2026）京0105民初号", "（２０２６）京0105民初0号", "", "x" * 5000):
        with pytest.raises(InvalidDossierInputError):
            app.open_dossier(case_number_text=bad, case_type="民事", parties=[], **ACT)
    with pytest.raises(InvalidDossierInputError):
        app.open_dossier(case_number_text="（2026）京0105民初124号", case_type="外星", parties=[], **ACT)
    with pytest.raises(DossierNotFoundError):
        app.get("not-a-uuid")
    # Optimistic concurrency: two clerks read version N, both write.
    a, b = app.get(d), app.get(d)
    a.transfer(to_court="1101-0200", kind="上诉", reason="一", **ACT)
    b.transfer(to_court="1101-0200", kind="移送", reason="二", **ACT)
    app._save(a)
    with pytest.raises(DossierConflictError):
        app._save(b)
    doc = app.upload(d, iter([b"x"]), name="判决书.txt", media_type="text/plain", source="court", doc_type=None, **ACT)
    app.withdraw(d, document_id=doc["document_id"], reason="上传错误，重新上传", **ACT)
    assert doc["document_id"] not in app.get(d).catalogue  # a correction is a new event
    app.archive(d, retention="30", package_sha256="0" * 64, **ACT)
    with pytest.raises(DossierArchivedError):
        app.upload(d, iter([b"late"]), name="迟到.pdf", media_type="application/pdf", source="court",
                   doc_type=None, **ACT)  # fmt: skip
    with pytest.raises(DossierArchivedError):
        app.transfer(d, to_court="1101-0200", kind="上诉", reason="x", **ACT)
    app.retrieve(d, by_court="1101-0200", by="judge:wang", reason="再审调阅", **ACT)  # reads stay possible
    stack.sealer.seal()
    # Refused commands recorded nothing; every recorded event is one leaf (ids may have gaps on PostgreSQL).
    notes = app.recorder.select_notifications(start=None, limit=1000)
    assert stack.log.size == len(notes) == 7
    assert [read_leaf(e)["position"] for e in stack.log.entries(0, 7)] == [n.id for n in notes]


def test_catalogue_rules_and_pdf_pages() -> None:
    assert place("判决书", "a.pdf").category == "判决书"
    assert place(None, "（2026）京0105民初123号 民事判决书.pdf").reason == "file name"
    spot = place(None, "scan0001.pdf", "北京市朝阳区人民法院\n民事判决书\n原告张三……")
    assert (spot.category, spot.reason) == ("判决书", "pdf text")
    assert place(None, "合议庭评议笔录.docx").volume == "副卷"
    assert place(None, "照片.jpg").category == "其他材料"
    info = pdf_info(iter([pdf_bytes(7)]))
    assert info is not None and info.pages == 7 and not info.encrypted
    assert pdf_info(iter([b"%PDF-1.4 not really"])) is None


def test_leaf_body_is_canonical_json(stack: Stack) -> None:
    stack.app.open_dossier(case_number_text=CASE, case_type="民事", parties=[PARTY], **ACT)
    stack.sealer.seal()
    raw = stack.log.entry(0)
    doc = json.loads(raw)
    assert raw == rfc8785.dumps(doc)  # the RFC 8785 reference serializer agrees byte for byte
    assert doc["type"] == "Opened" and doc["format"] == "sifa-leaf/2" and "case_number" in doc["commitments"]


def test_two_sequencers_taking_turns_keep_every_dossier_chained(stack: Stack) -> None:
    """A sequencer remembers each dossier's last leaf between batches; when another one appended
    meanwhile, it must not trust what it remembers (else a leaf's ``prev`` would skip a leaf)."""
    from dossier.audit import audit
    from dossier.sealer import Sealer

    other = Sealer(stack.app, stack.log, stack.signer, secret=stack.sealer.secret, batch=3)
    stack.sealer.batch = 3
    ids = [stack.app.open_dossier(case_number_text=f"（2026）京0105民初{n}号", case_type="民事", parties=[], **ACT)
           for n in (901, 902)]  # fmt: skip
    for turn in range(6):
        for d in ids:
            stack.app.submit_evidence(d, sha256=hashlib.sha256(b"%d" % turn).hexdigest(), size=turn, name="证据.pdf",
                                      submitter={"role": "原告", "name": "张三"}, description="", **ACT)  # fmt: skip
        (stack.sealer if turn % 2 else other).seal(limit=3)
    stack.sealer.seal()
    chains: dict[str, bytes | None] = {}
    for i in range(stack.log.size):
        leaf = read_leaf(stack.log.entry(i))
        prev = chains.get(leaf["dossier"])
        assert leaf["prev"] == (prev.hex() if prev else None), f"leaf {i} does not follow its dossier's last leaf"
        chains[leaf["dossier"]] = stack.log.hasher.leaf(stack.log.entry(i))
    assert audit(stack.app, stack.log, stack.app.blobs, stack.signer.verifier, secret=stack.sealer.secret).clean


def test_a_sealing_pass_takes_full_batches_then_stops(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog is sealed in full batches; what arrives during the pass's last, partial batch waits
    for the next pass (and its interval), so steady load makes whole batches, not one per handful."""
    app, log = stack.app, stack.log
    d = app.open_dossier(case_number_text=CASE, case_type="民事", parties=[], **ACT)

    def evidence(n: int) -> None:
        app.submit_evidence(d, sha256=hashlib.sha256(b"%d" % n).hexdigest(), size=n, name=f"证据{n}.pdf",
                            submitter={"role": "原告", "name": "张三"}, description="", **ACT)  # fmt: skip

    for n in range(9):
        evidence(n)
    append, sizes = log.append, []

    def arriving_meanwhile(entries: Any, **kw: Any) -> int:
        sizes.append(len(entries))
        if len(sizes) == 3:
            evidence(100)  # a clerk records while the pass's last batch is being written
        return append(entries, **kw)

    monkeypatch.setattr(log, "append", arriving_meanwhile)
    stack.sealer.batch = 4
    assert stack.sealer.seal() == 10 and sizes == [4, 4, 2]
    kept = log.store.checkpoint()
    assert kept is not None and kept[0] == log.size == 10  # the checkpoint committed with the last batch
    assert stack.sealer.seal() == 1 and sizes == [4, 4, 2, 1] and log.size == 11
