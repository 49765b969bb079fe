"""执行 over real HTTP: an execution case linked to a judgment's dossier and leaf; operations as events;
冻结/扣划/案款发放 in effect only once another principal approves (闭环); the audit (API and
``sifa audit --execution``); 结案 of any dossier and its status as a party sees it; and no amount,
account or operation in clear in the public leaves."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.cli import main as sifa
from tests.nodes import Node, node  # noqa: F401  (the fixture)

ACCOUNT = "6222021234567890123"
AMOUNT = 12_345_600  # 123,456.00 元
VIDEO = hashlib.sha256(b"body-camera video of the 2026-12-01 search").hexdigest()


def post(node: Node, path: str, body: dict[str, Any], role: str = "clerk") -> Any:  # noqa: F811
    return node.http.post(path, json=body, headers=node.as_(role))


def sealed_leaf(node: Node, dossier: str, version: int) -> int:  # noqa: F811
    deadline = time.monotonic() + 20
    while True:
        events = node.http.get(f"/v1/dossiers/{dossier}/events", headers=node.as_("clerk")).json()
        leaf = next(e["leaf_index"] for e in events if e["version"] == version)
        if leaf is not None:
            return int(leaf)
        assert time.monotonic() < deadline, "not sealed"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def case(node: Node) -> dict[str, Any]:  # noqa: F811
    parties = [{"role": "原告", "name": "周七"}, {"role": "被告", "name": "吴八"}]
    r = post(node, "/v1/dossiers", {"case_number": "（2026）京0105民初9号", "case_type": "民事", "parties": parties})
    judgment = r.json()["dossier"]
    headers = {**node.as_("judge"), "X-File-Name": quote("民事判决书.txt"), "Content-Type": "text/plain"}
    up = node.http.post(f"/v1/dossiers/{judgment}/documents", content="判决：被告偿还原告十二万元。".encode(),
                        headers=headers)  # fmt: skip
    assert up.status_code == 201, up.text
    leaf = sealed_leaf(node, judgment, up.json()["version"] - 1)
    r = post(node, "/v1/dossiers", {"case_number": "（2026）京0105执1号", "case_type": "执行",
                                    "parties": [{"role": "申请执行人", "name": "周七"},
                                                {"role": "被执行人", "name": "吴八"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return {"judgment": judgment, "leaf": leaf, "execution": r.json()["dossier"]}


def test_execution_with_closed_loop_approval(node: Node, case: dict[str, Any]) -> None:  # noqa: F811
    ex, base = case["execution"], f"/v1/dossiers/{case['execution']}"
    # The link is checked: the leaf must be one of the judgment dossier's.
    r = post(node, base + "/execution", {"judgment_dossier": case["judgment"], "judgment_leaf": 10**9}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), r.text
    r = post(node, base + "/execution", {"judgment_dossier": case["judgment"], "judgment_leaf": case["leaf"]}, "judge")
    assert r.status_code == 201, r.text
    ops: dict[str, dict[str, Any]] = {}
    for body in (
        {"kind": "执行通知", "party": 1},
        {"kind": "查询", "account": ACCOUNT},
        {"kind": "冻结", "account": ACCOUNT, "amount_fen": AMOUNT},
        {"kind": "执法取证", "files": [{"sha256": VIDEO, "size": 734_003_200}]},
        {"kind": "扣划", "account": ACCOUNT, "amount_fen": AMOUNT},
        {"kind": "纳入失信名单", "party": 1, "note": "有履行能力而拒不履行"},
    ):
        r = post(node, base + "/execution/operations", body)  # the clerk records
        assert r.status_code == 201, r.text
        ops[body["kind"]] = r.json()
        assert r.json()["effective"] is (body["kind"] not in ("冻结", "扣划"))
    # 闭环: the clerk who recorded the freeze may not approve it; the judge may, once.
    freeze = ops["冻结"]["operation_id"]
    r = post(node, f"{base}/execution/operations/{freeze}/approve", {})
    assert (r.status_code, r.json()["code"]) == (422, "approval_by_same_principal"), r.text
    r = post(node, f"{base}/execution/operations/{freeze}/approve", {}, "judge")
    assert r.status_code == 200, r.text
    r = post(node, f"{base}/execution/operations/{freeze}/approve", {}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), r.text
    r = post(node, f"{base}/execution/operations/{ops['查询']['operation_id']}/approve", {}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), r.text  # needs no approval
    # The audit: every operation, who recorded and approved it; the deduction still waits; no violation.
    audit = node.http.get(base + "/execution/audit", headers=node.as_("judge")).json()
    assert audit["clean"] and audit["violations"] == []
    by_id = {o["operation_id"]: o for o in audit["operations"]}
    assert by_id[freeze]["effective"] and by_id[freeze]["approved_by"] != by_id[freeze]["actor"]
    assert audit["awaiting_approval"] == [ops["扣划"]["operation_id"]]
    assert [o["kind"] for o in audit["operations"]] == list(ops)
    # sifa audit --execution, beside the running node: the same report.
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(["audit", "--data-dir", str(node.data), "--execution", "--dossier", ex, "--json"])
    assert code == 0, err.getvalue()
    cli = json.loads(out.getvalue())
    assert [o["operation_id"] for o in cli["operations"]] == [o["operation_id"] for o in audit["operations"]]
    assert "awaiting approval" in err.getvalue() and "clean" in err.getvalue()
    # The node's own audit re-derives every leaf of these private events from the stored events.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
        assert sifa(["audit", "--data-dir", str(node.data), "--dossier", ex]) == 0, err.getvalue()
    # The party sees the status with their credential once admitted; 报结 closes, 归档 follows.
    r = node.http.post(
        f"/v1/principals/{node.ids['party']}/admissions", json={"dossier": ex}, headers=node.as_("clerk")
    )
    assert r.status_code == 204, r.text
    seen = node.http.get(base + "/status", headers=node.as_("party")).json()
    assert seen["closed"] is None and seen["execution"]["awaiting_approval"] == 1
    r = post(node, base + "/execution/operations", {"kind": "纳入失信名单", "party": 9})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input") and "party" in r.json()["message"], r.text
    # 闭环 between persons: a second clerk credential under the same name is the same person.
    r = node.http.post(
        "/v1/principals", json={"name": "clerk 测试", "role": "clerk"}, headers=node.as_("administrator")
    )
    assert r.status_code == 201, r.text
    twin = {"Authorization": f"Bearer {r.json()['token']}"}
    deduction = ops["扣划"]["operation_id"]
    r = node.http.post(f"{base}/execution/operations/{deduction}/approve", json={}, headers=twin)
    assert (r.status_code, r.json()["code"]) == (422, "approval_by_same_principal"), r.text
    # 报结 and 结案 wait for every sensitive step: refused while the deduction awaits its approval.
    r = post(node, base + "/execution/operations", {"kind": "报结", "closure_method": "执行完毕"}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "approvals_pending"), r.text
    r = post(node, base + "/closure", {"method": "执行完毕", "date": "2026-12-01"}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "approvals_pending"), r.text
    assert post(node, f"{base}/execution/operations/{deduction}/approve", {}, "judge").status_code == 200
    r = post(node, base + "/execution/operations", {"kind": "报结", "closure_method": "执行完毕"}, "judge")
    assert r.status_code == 201, r.text
    r = post(node, base + "/execution/operations", {"kind": "冻结", "account": ACCOUNT, "amount_fen": 1}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "execution_closed"), r.text  # closed
    assert post(node, base + "/execution/operations", {"kind": "归档"}, "judge").status_code == 201
    r = post(node, base + "/execution/operations", {"kind": "归档"}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "execution_closed"), r.text  # archived once
    assert node.http.get(base + "/execution/audit", headers=node.as_("judge")).json()["clean"]
    seen = node.http.get(base + "/status", headers=node.as_("party")).json()
    assert seen["closed"]["method"] == "执行完毕"
    # No amount, account, kind or reason in clear in any of the execution's leaves (sifa-leaf/2); the
    # evidence files an operation lists are committed too (only a top-level file field is in clear).
    leaves = []
    for e in node.http.get(base + "/events", headers=node.as_("clerk")).json():
        r = node.http.get(f"{base}/receipts/{e['version']}", headers=node.as_("clerk"))
        if r.status_code == 200:
            leaves.append(base64.b64decode(r.json()["leaf_data"]).decode())
    joined = "\n".join(leaves)
    assert "ExecutionOperation" in joined and VIDEO not in joined
    for secret in (ACCOUNT, str(AMOUNT), "冻结", "扣划", "失信", "有履行能力", "执行完毕", case["judgment"]):
        assert secret not in joined, secret


def test_any_dossier_is_closed_once(node: Node, case: dict[str, Any]) -> None:  # noqa: F811
    base = f"/v1/dossiers/{case['judgment']}"
    for body, status, code in (
        ({"method": "凭感觉", "date": "2026-12-01"}, 422, "invalid_input"),
        ({"method": "判决", "date": "2026-02-30"}, 422, "invalid_input"),
        ({"method": "判决", "date": "2026/12/01"}, 422, "invalid_request"),
        ({"method": "判决", "date": "9999-12-31"}, 422, "time_in_future"),
        ({"method": "判决", "date": "2099-01-01"}, 422, "time_in_future"),
        ({"method": "判决", "date": "2026-12-01", "reason": "extra"}, 422, "invalid_request"),  # unknown field
    ):
        r = post(node, base + "/closure", body, "judge")
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert post(node, base + "/closure", {"method": "判决", "date": "2026-12-01"}, "party").status_code == 403
    closed = post(node, base + "/closure", {"method": "判决", "date": "2026-12-01"}, "judge")
    assert closed.status_code == 200, closed.text
    deadline = time.monotonic() + 20
    while (
        r := node.http.get(f"{base}/receipts/{closed.json()['version']}", headers=node.as_("clerk"))
    ).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    leaf = base64.b64decode(r.json()["leaf_data"]).decode()
    assert (
        '"type":"CaseClosed"' in leaf and "判决" not in leaf and "2026-12-01" not in leaf
    )  # 结案方式 and date committed
    r = post(node, base + "/closure", {"method": "调解", "date": "2026-12-02"}, "judge")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), r.text
    seen = node.http.get(base + "/status", headers=node.as_("clerk")).json()
    assert seen["closed"] == {"method": "判决", "date": "2026-12-01"}
    assert (
        node.http.get(base + "/status", headers=node.as_("party")).status_code == 404
    )  # not admitted here: as if absent


@pytest.mark.parametrize(("body", "code"), [
    ({"kind": "冻结", "account": ACCOUNT}, "invalid_input"),  # no amount
    ({"kind": "扣划", "amount_fen": 1}, "invalid_input"),  # no account
    ({"kind": "执行通知", "amount_fen": 1, "party": 0}, "invalid_input"),
    ({"kind": "冻结", "account": ACCOUNT, "amount_fen": 0}, "invalid_request"),
    ({"kind": "冻结", "account": ACCOUNT, "amount_fen": 1.5}, "invalid_request"),
    ({"kind": "冻结", "account": "账" * 65, "amount_fen": 1}, "invalid_request"),
    ({"kind": "冻结", "account": "622\u202e1", "amount_fen": 1}, "invalid_input"),
    ({"kind": "执法取证", "files": []}, "invalid_input"),
    ({"kind": "执法取证", "files": [{"sha256": "XYZ", "size": 1}]}, "invalid_request"),
    ({"kind": "报结"}, "invalid_input"),  # no 结案方式
    ({"kind": "没收"}, "invalid_request"),
])  # fmt: skip
def test_bad_operations(node: Node, case: dict[str, Any], body: dict[str, Any], code: str) -> None:  # noqa: F811
    r = post(node, f"/v1/dossiers/{case['execution']}/execution/operations", body)
    assert r.status_code == 422 and r.json()["code"] == code, r.text


def test_audit_names_a_sensitive_operation_approved_by_its_own_recorder() -> None:
    """Events the domain would refuse (written past its check, as a tampered store could hold them):
    the audit, recomputed from the events, names the violation and does not count the step in effect."""
    from dossier.domain import Dossier
    from dossier.execution import ExecutionApproved, ExecutionOpened, ExecutionOperation, audit
    from dossier.private import trigger

    d = Dossier(court="1101-0105", case_number="（2026）京0105执2号", case_type="执行", parties=[], actor="a",
                role="clerk")  # fmt: skip
    trigger(d, ExecutionOpened, judgment_dossier="j", judgment_leaf=0, actor="a", role="clerk")
    for op, who in (("op1", "a"), ("op2", "a")):
        trigger(d, ExecutionOperation, operation_id=op, kind="扣划", amount_fen=1, account="x", party=None,
                document_id=None, files=[], closure_method=None, note="", actor=who, role="clerk")  # fmt: skip
    trigger(d, ExecutionApproved, operation_id="op1", actor="a", role="clerk")  # the recorder approves
    trigger(d, ExecutionApproved, operation_id="op9", actor="b", role="judge")  # no such operation
    report = audit(d.collect_events(), lambda v: None)
    assert not report["clean"]
    assert {(v["operation_id"], v["problem"]) for v in report["violations"]} == {
        ("op1", "approved by the principal who recorded it"),
        ("op9", "an approval of no operation"),
    }
    assert [o["effective"] for o in report["operations"]] == [False, False]
    assert report["awaiting_approval"] == ["op2"]


def test_new_events_at_their_maxima_fit_a_leaf() -> None:
    """Every field of the new events at its bound, in the widest characters: the leaf stays far under
    65,535 bytes (committed fields are 64 hex digits whatever their length)."""
    from dossier import fields
    from dossier.domain import Dossier
    from dossier.envelope import MAX_ENTRY_SIZE, leaf_bound, leaf_v2
    from dossier.execution import MAX_FILES, CaseClosed, ExecutionOpened, ExecutionOperation
    from dossier.private import trigger
    from dossier.service import Served

    wide = "𠀀"
    d = Dossier(court="1101-0105", case_number="（2026）京0105执3号", case_type="执行", parties=[],
                actor=wide * fields.LIMITS["actor"], role="clerk")  # fmt: skip
    actor = {"actor": wide * fields.LIMITS["actor"], "role": "r" * fields.LIMITS["role"]}
    d.upload(document_id="d" * 64, sha256="a" * 64, size=1, name="x", media_type="text/plain", source="court",
             doc_type="", pages=None, actor="a", role="clerk")  # fmt: skip
    trigger(d, ExecutionOpened, judgment_dossier=str(d.id), judgment_leaf=2**53 - 1, **actor)
    trigger(d, ExecutionOperation, operation_id="f" * 32, kind="执法取证", amount_fen=10**15,
            account=wide * fields.LIMITS["account"], party=10_000, document_id="d" * 64,
            files=[{"sha256": "a" * 64, "size": fields.MAX_SIZE}] * MAX_FILES, closure_method="终结本次执行程序",
            note=wide * fields.LIMITS["description"], **actor)  # fmt: skip
    trigger(d, Served, document_id="d" * 64, sha256="a" * 64, channel="电子送达平台",
            tracking_number="T" * fields.LIMITS["tracking number"], sent_at="9999-12-31T23:59:59.999999Z",
            delivered_at="9999-12-31T23:59:59.999999Z", read_at="9999-12-31T23:59:59.999999Z",
            addressee={"party": 10_000, "role": wide * 50, "name": wide * 200, "agent": wide * 200},
            recipient="c" * 64, receipt_document_id="d" * 64, receipt_sha256="b" * 64, **actor)  # fmt: skip
    trigger(d, CaseClosed, method="终结本次执行程序", date="2026-12-01", **actor)
    for e in d.collect_events()[2:]:
        size = len(leaf_v2("o" * 255, 2**53 - 1, 2**53 - 1, e, b"\0" * 32, b"s" * 32))
        assert size <= MAX_ENTRY_SIZE // 4 and size <= leaf_bound(e) <= MAX_ENTRY_SIZE, (type(e).__name__, size)


def test_audit_names_steps_around_the_closure() -> None:
    """Forged into the store past the commands' checks: 报结 while a step awaits approval, an approval
    after 报结, an operation after 归档, a second 归档. The audit names each."""
    from dossier.domain import Dossier
    from dossier.execution import ExecutionApproved, ExecutionOpened, ExecutionOperation, audit
    from dossier.private import trigger

    d = Dossier(court="1101-0105", case_number="（2026）京0105执3号", case_type="执行", parties=[], actor="a",
                role="clerk")  # fmt: skip
    trigger(d, ExecutionOpened, judgment_dossier="j", judgment_leaf=0, actor="a", role="clerk")

    def op(op_id: str, kind: str, **kw: Any) -> None:
        fields = {"amount_fen": None, "account": None, "closure_method": None, **kw}
        trigger(d, ExecutionOperation, operation_id=op_id, kind=kind, party=None, document_id=None, files=[],
                note="", actor="a", role="clerk", **fields)  # fmt: skip

    op("pay", "案款发放", amount_fen=1, account="x")
    op("end", "报结", closure_method="执行完毕")
    trigger(d, ExecutionApproved, operation_id="pay", actor="b", role="judge")  # after 报结
    op("arc", "归档")
    op("arc2", "归档")
    report = audit(d.collect_events(), lambda v: None)
    assert {(v["operation_id"], v["problem"]) for v in report["violations"]} == {
        ("pay", "the case was closed while this step awaited approval"),
        ("pay", "approved after the case was closed"),
        ("arc2", "归档 after the case was closed and archived"),
    }
    assert not report["clean"]


def test_a_private_event_stored_with_its_old_salts_still_loads_seals_and_audits(tmp_path: Path) -> None:
    """Events stored by an older sifa carry per-field ``salts`` (dossier/private.py no longer writes
    them): such an event loads, its leaf is the one the same event without them has (no leaf holds
    salts), and the audit finds nothing."""
    from dossier.audit import audit
    from dossier.domain import Dossier
    from dossier.envelope import leaf_v2
    from dossier.execution import ExecutionOpened
    from dossier.private import trigger
    from tests.dossier_fixtures import make_stack

    stack = make_stack("sqlite", tmp_path)
    try:
        d = Dossier(court="1101-0105", case_number="（2026）京0105执9号", case_type="执行", parties=[], actor="a",
                    role="clerk")  # fmt: skip
        trigger(d, ExecutionOpened, judgment_dossier="j", judgment_leaf=7, actor="a", role="clerk")
        old = d.pending_events[-1]
        assert "salts" not in vars(old)
        bare = leaf_v2("o", 1, 2, old, None, stack.sealer.secret)
        salts = {k: "00" * 16 for k in ("judgment_dossier", "judgment_leaf", "actor", "role")}
        object.__setattr__(old, "__dict__", {**vars(old), "salts": salts})  # as the mapper reads a stored one
        assert leaf_v2("o", 1, 2, old, None, stack.sealer.secret) == bare
        stack.app.save(d)
        loaded = list(stack.app.repository.event_store.get(d.id))
        assert loaded[-1].salts == salts and loaded[-1].judgment_leaf == 7
        assert stack.sealer.seal() == 2
        leaf = stack.log.entry(1)
        assert b"salts" not in leaf and b'"judgment_leaf"' in leaf  # the path is committed, the salts are not
        report = audit(stack.app, stack.log, stack.app.blobs, stack.signer.verifier, secret=stack.sealer.secret)
        assert report.findings == [] and report.events == 2
    finally:
        stack.close()
