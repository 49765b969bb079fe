"""送达 over real HTTP: a clerk records a service; whoever holds the served document checks it by its
hash (court, when, channel, delivered and read), the recipient named only for the 送达码; the public
leaf holds no name, channel, time or tracking number in clear."""

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

from tests.dossier_fixtures import pdf_bytes
from tests.nodes import Node, node  # noqa: F401  (the fixture)
from verifier.cli import main as sifa_verify

JUDGMENT = "（2026）京0105民初8号 民事判决书\n判决如下：……\n".encode()
DELIBERATION = "合议庭评议笔录：二比一。\n".encode()  # a 副卷 document
RETURN = "送达回执 （2026）京0105民初8号\n受送达人签收。\n".encode()


def upload(node: Node, dossier: str, content: bytes, name: str, doc_type: str | None = None) -> dict[str, Any]:  # noqa: F811
    headers = {**node.as_("clerk"), "X-File-Name": quote(name), "Content-Type": "text/plain",
               **({"X-Doc-Type": quote(doc_type)} if doc_type else {})}  # fmt: skip
    r = node.http.post(f"/v1/dossiers/{dossier}/documents", content=content, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def case(node: Node) -> dict[str, Any]:  # noqa: F811
    r = node.http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初8号", "case_type": "民事", "parties": [
        {"role": "原告", "name": "王五"}, {"role": "被告", "name": "赵六有限公司", "kind": "legal"}]},
        headers=node.as_("clerk"))  # fmt: skip
    assert r.status_code == 201, r.text
    dossier = r.json()["dossier"]
    return {"dossier": dossier, "judgment": upload(node, dossier, JUDGMENT, "民事判决书.txt"),
            "return": upload(node, dossier, RETURN, "送达回执.txt"),
            "court_only": upload(node, dossier, DELIBERATION, "合议庭评议笔录.txt", "合议庭评议笔录")}  # fmt: skip


def check(node: Node, sha: str, code: str | None = None, *, wait: bool = True) -> dict[str, Any]:  # noqa: F811
    deadline = time.monotonic() + 20
    while True:
        r = node.http.post("/v1/service/check", json={"sha256": sha, **({"code": code} if code else {})})
        assert r.status_code == 200, r.text
        if r.json()["served"] or not wait or time.monotonic() > deadline:
            return dict(r.json())
        time.sleep(0.1)


def test_service_checkable_by_the_document_holder(node: Node, case: dict[str, Any]) -> None:  # noqa: F811
    sha = hashlib.sha256(JUDGMENT).hexdigest()
    assert check(node, sha, wait=False)["served"] is False  # uploaded, not served yet
    body = {"document_id": case["judgment"]["document_id"], "channel": "邮寄", "tracking_number": "EMS1234567890CN",
            "sent_at": "2026-11-23T09:00:00+08:00", "delivered_at": "2026-11-25T10:30:00+08:00",
            "read_at": "2026-11-25T11:00:00+08:00", "party": 1, "agent": "孙律师",
            "receipt_document_id": case["return"]["document_id"]}  # fmt: skip
    r = node.http.post(f"/v1/dossiers/{case['dossier']}/service-records", json=body, headers=node.as_("clerk"))
    assert r.status_code == 201, r.text
    code = r.json()["service_code"]
    assert len(code) == 24 and code.count("-") == 4
    # Anyone (no credential) with the document's hash: served by this court, when, how; not to whom.
    seen = check(node, sha)
    assert seen["served"] and seen["court"] == "北京市朝阳区人民法院"
    [s] = seen["services"]
    assert (s["channel"], s["sent_at"], s["delivered_at"], s["read_at"]) == (
        "邮寄",
        "2026-11-23T01:00:00.000000Z",
        "2026-11-25T02:30:00.000000Z",
        "2026-11-25T03:00:00.000000Z",
    )
    assert s["receipt_sha256"] == hashlib.sha256(RETURN).hexdigest()
    assert s["recipient"] is None and s["tracking_number"] is None and len(s["recipient_commitment"]) == 64
    # The 送达码 opens the recipient (any case, dashes or not); another code does not.
    for typed in (code, code.lower().replace("-", "")):
        opened = check(node, sha, typed)["services"][0]
        assert opened["recipient"] == "被告 赵六有限公司 的代理人 孙律师"
        assert opened["tracking_number"] == "EMS1234567890CN"
    other = "0000-0000-0000-0000-0000" if code != "0000-0000-0000-0000-0000" else "1111-1111-1111-1111-1111"
    assert check(node, sha, other)["services"][0]["recipient"] is None
    assert check(node, sha, "not a code")["services"][0]["recipient"] is None
    # The public leaf (sifa-leaf/2): the two file hashes; the rest, the recipient's commitment too, only as
    # salted commitments — the 送达码 opens the recipient at this court's check, not in the public log.
    r = node.http.post("/v1/verify", json={"sha256": sha})
    [leaf] = [base64.b64decode(x["leaf_data"]).decode() for x in r.json()["records"] if x["item"] == "Served"]
    for secret in ("赵六", "孙律师", "被告", "邮寄", "EMS1234567890CN", "2026-11-23", "2026-11-25", "clerk"):
        assert secret not in leaf, secret
    assert hashlib.sha256(RETURN).hexdigest() in leaf and s["recipient_commitment"] not in leaf
    # The 回执's own hash finds no service (it was not the served document).
    assert check(node, hashlib.sha256(RETURN).hexdigest(), wait=False)["served"] is False


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"delivered_at": "2026-11-22T08:00:00+08:00"}, 422, "invalid_input"),  # delivered before sent
    ({"read_at": "2026-11-23T08:00:00+08:00"}, 422, "invalid_input"),  # read before delivered
    ({"delivered_at": None, "read_at": "2026-11-24T08:00:00+08:00"}, 422, "invalid_input"),  # read, never delivered
    ({"channel": "邮寄"}, 422, "invalid_input"),  # post without its tracking number
    ({"tracking_number": "SF123"}, 422, "invalid_input"),  # a tracking number for the platform
    ({"channel": "飞鸽传书"}, 422, "invalid_request"),
    ({"party": 2}, 422, "invalid_input"),  # the dossier has two parties
    ({"party": -1}, 422, "invalid_request"),
    ({"agent": "李\u202e四"}, 422, "invalid_input"),
    ({"agent": "律" * 201}, 422, "invalid_request"),
    ({"document_id": "nope"}, 404, "unknown_document"),
    ({"receipt_document_id": "nope"}, 404, "unknown_document"),
    ({"sent_at": "2026-11-23T09:00:00"}, 422, "invalid_request"),  # no UTC offset
    ({"sent_at": "2099-11-23T09:00:00Z", "delivered_at": None}, 422, "time_in_future"),
    ({"delivered_at": "2099-11-23T09:00:05+08:00"}, 422, "time_in_future"),
    ({"tracking": "EMS1"}, 422, "invalid_request"),  # an unknown field: refused, not ignored
    ({"document_id": "court_only"}, 422, "service_document_court_only"),  # a 副卷 document is not served
    ({"receipt_document_id": "court_only"}, 422, "service_document_court_only"),  # nor is it the 回执
])  # fmt: skip
def test_bad_service_records(node: Node, case: dict[str, Any], change: dict[str, Any], status: int,  # noqa: F811
                             code: str) -> None:  # fmt: skip
    body = {"document_id": case["judgment"]["document_id"], "channel": "电子送达平台",
            "sent_at": "2026-11-23T09:00:00+08:00", "delivered_at": "2026-11-23T09:00:05+08:00", "party": 0,
            **{k: case[v]["document_id"] if v == "court_only" else v for k, v in change.items()}}  # fmt: skip
    before = node.http.get(f"/v1/dossiers/{case['dossier']}/events", headers=node.as_("clerk")).json()
    r = node.http.post(f"/v1/dossiers/{case['dossier']}/service-records", json=body, headers=node.as_("clerk"))
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    after = node.http.get(f"/v1/dossiers/{case['dossier']}/events", headers=node.as_("clerk")).json()
    assert [e["type"] for e in after[len(before) :]] == ["Retrieved"]  # only our own read of the events


def test_only_a_clerk_records_a_service(node: Node, case: dict[str, Any]) -> None:  # noqa: F811
    body = {"document_id": case["judgment"]["document_id"], "channel": "短信", "sent_at": "2026-11-23T09:00:00Z",
            "party": 0}  # fmt: skip
    for role, status in (("lawyer", 403), ("party", 403), ("judge", 403)):
        r = node.http.post(f"/v1/dossiers/{case['dossier']}/service-records", json=body, headers=node.as_(role))
        assert r.status_code == status, r.text
    assert node.http.post("/v1/service/check", json={"sha256": "xyz"}).json()["code"] == "invalid_request"


def test_a_dossier_with_a_service_packages_and_archives(node: Node, case: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """GET …/package (the court's, an admitted lawyer's copy) and POST …/archive of a dossier holding a
    Served event answered 500 (the leaf's document_id is a commitment); now they answer, and the
    lawyer's copy verifies whole with sifa-verify --dossier."""
    d = case["dossier"]
    body = {"document_id": case["judgment"]["document_id"], "channel": "短信", "sent_at": "2026-11-23T09:00:00Z",
            "party": 0, "receipt_document_id": case["return"]["document_id"]}  # fmt: skip
    assert node.http.post(f"/v1/dossiers/{d}/service-records", json=body, headers=node.as_("clerk")).status_code == 201
    r = node.http.post(
        f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d}, headers=node.as_("clerk")
    )
    assert r.status_code == 204, r.text
    key = node.http.get("/v1/log/key").json()["verifier_key"]
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [{"key": key}]}), encoding="utf-8")
    for role in ("clerk", "lawyer"):
        r = node.http.get(f"/v1/dossiers/{d}/package", headers=node.as_(role))
        assert r.status_code == 200, r.text[:300]
        path = tmp_path / f"{role}.tar"
        path.write_bytes(r.content)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
            assert sifa_verify(["--dossier", str(path), "--trust", str(trust)]) == 0, err.getvalue()
        assert hashlib.sha256(DELIBERATION).hexdigest().encode() not in r.content or role == "clerk"
    # 归档 of a dossier whose documents pass the four-property check (a PDF, catalogued with its pages).
    opened = {
        "case_number": "（2026）京0105民初18号",
        "case_type": "民事",
        "parties": [{"role": "原告", "name": "王五"}],
    }
    r = node.http.post("/v1/dossiers", json=opened, headers=node.as_("clerk"))
    a = r.json()["dossier"]
    r = node.http.post(f"/v1/dossiers/{a}/documents", content=pdf_bytes(2), headers={
        **node.as_("clerk"), "X-File-Name": quote("民事判决书.pdf"), "Content-Type": "application/pdf"})  # fmt: skip
    assert r.status_code == 201, r.text
    body = {"document_id": r.json()["document_id"], "channel": "短信", "sent_at": "2026-11-23T09:00:00Z", "party": 0}
    assert node.http.post(f"/v1/dossiers/{a}/service-records", json=body, headers=node.as_("clerk")).status_code == 201
    r = node.http.post(f"/v1/dossiers/{a}/archive", headers=node.as_("archivist"), json={"retention": "30"})
    assert r.status_code == 200, r.text
