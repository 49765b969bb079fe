"""送达 and 执行 events on both event stores (SQLite, PostgreSQL): recorded, sealed, and read back by a
fresh application (replayed from the store, no cache), with the same state and the same leaves."""

from __future__ import annotations

import io
from pathlib import Path

from dossier import execution, service
from dossier.audit import audit
from tests.dossier_fixtures import Stack, make_stack


def test_recorded_sealed_and_replayed(stack: Stack, tmp_path: Path) -> None:
    app = stack.app
    judgment = app.open_dossier(case_number_text="（2026）京0105民初11号", case_type="民事",
                                parties=[{"role": "原告", "name": "冯十"}], actor="c", role="clerk")  # fmt: skip
    doc = app.upload(judgment, io.BytesIO("判决书".encode()), name="判决书.txt", media_type="text/plain",
                     source="court", doc_type=None, actor="c", role="clerk")  # fmt: skip
    pending = service.record(app, judgment, document_id=doc["document_id"], channel="电子邮件",
                             sent_at="2026-11-23T09:00:00Z", party=0, actor="c", role="clerk")  # fmt: skip
    served = app.enqueue(pending).result()
    stack.sealer.seal()
    [leaf] = stack.log.find(f"event:{judgment}:{doc['version'] - 1}")
    ex = app.open_dossier(case_number_text="（2026）京0105执11号", case_type="执行",
                          parties=[{"role": "被执行人", "name": "冯十"}], actor="c", role="clerk")  # fmt: skip
    app.enqueue(execution.open_execution(ex, judgment_dossier=str(judgment), judgment_leaf=leaf,
                                         leaf_dossier=lambda i: str(judgment) if i == leaf else None,
                                         actor="c", role="clerk")).result()  # fmt: skip
    op = app.enqueue(execution.operate(ex, kind="扣划", account="6222", amount_fen=100, actor="c",
                                       role="clerk")).result()  # fmt: skip
    app.enqueue(execution.approve(ex, operation_id=op["operation_id"], actor="j", role="judge")).result()
    app.enqueue(execution.close(judgment, method="判决", date="2026-12-01", actor="j", role="judge")).result()
    stack.sealer.seal()
    # A fresh application over the same stores replays every event from the store.
    spec = "sqlite" if "SQLITE_DBNAME" in app.env else (
        f"postgres:{app.env['POSTGRES_HOST']}:{app.env['POSTGRES_PORT']}:{app.env['POSTGRES_DBNAME']}")  # fmt: skip
    again = make_stack(spec, tmp_path)
    try:
        d = again.app.get(ex)
        assert execution.status(d)["execution"] == {"judgment_dossier": str(judgment), "judgment_leaf": leaf,
                                                    "operations": 1, "awaiting_approval": 0}  # fmt: skip
        assert execution.status(again.app.get(judgment))["closed"] == {"method": "判决", "date": "2026-12-01"}
        assert again.app.get(judgment).documents[doc["document_id"]]["services"] == ["电子邮件"]
        found = service.lookup(again.app, again.log, doc["sha256"], served["service_code"])
        assert [f["recipient"] for f in found] == ["原告 冯十"]
        report = execution.audit_dossier(again.app, again.log, ex)
        assert report["clean"] and report["operations"][0]["approved_by"] == "j"
        assert audit(
            again.app, again.log, again.app.blobs, again.signer.verifier, secret=again.sealer.secret
        ).clean  # every leaf re-derived
    finally:
        again.close()
