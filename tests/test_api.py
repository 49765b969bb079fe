"""The node over real HTTP (uvicorn on 127.0.0.1): a dossier's life, access rules, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from fastapi.routing import APIRoute

from api.app import create_app
from api.deps import api_routes, route_roles
from api.settings import Settings
from tests.dossier_fixtures import pdf_bytes
from tests.nodes import ROLES, Node
from verifier.cli import main as sifa_verify

CASE = "（2026）京0105民初123号"


def _open(node: Node, number: str) -> str:
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"), json={
        "case_number": number, "case_type": "民事",
        "parties": [{"role": "原告", "name": "张三", "id_number": "110101199001011234"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def _upload(node: Node, dossier: str, data: bytes, name: str, role: str = "clerk", **headers: str) -> httpx2.Response:
    h = {**node.as_(role), "X-File-Name": quote(name), "Content-Type": "application/pdf", **headers}
    return node.http.post(f"/v1/dossiers/{dossier}/documents", content=iter([data[:1000], data[1000:]]), headers=h)


def test_life_of_a_dossier_from_open_to_archive(node: Node, tmp_path: Path) -> None:
    d = _open(node, CASE)
    complaint = pdf_bytes(4)
    r = _upload(node, d, complaint, "（2026）京0105民初123号 民事起诉状.pdf",
                **{"X-Content-SHA256": hashlib.sha256(complaint).hexdigest()})  # fmt: skip
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["pages"], up["category"], up["sha256"]) == (4, "起诉状", hashlib.sha256(complaint).hexdigest())
    lawyer = node.as_("lawyer")
    refused = node.http.get(f"/v1/dossiers/{d}", headers=lawyer)
    assert (refused.status_code, refused.json()["code"]) == (404, "dossier_not_found")  # as if absent
    r = node.http.post(f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d},
                       headers=node.as_("clerk"))  # fmt: skip
    assert r.status_code == 204, r.text
    evidence = b"%PDF-1.4 contract scan"
    assert node.http.post(f"/v1/dossiers/{d}/evidence", headers=lawyer, json={
        "sha256": hashlib.sha256(evidence).hexdigest(), "size": len(evidence), "name": "借款合同.pdf",
        "submitter": {"role": "原告", "name": "张三"}, "description": "借款合同"}).status_code == 200  # fmt: skip
    assert node.http.post(f"/v1/dossiers/{d}/services", headers=node.as_("clerk"), json={
        "document_id": up["document_id"], "recipient": {"role": "被告", "name": "李四"}, "channel": "电子送达平台",
        "sent_at": "2026-11-22T08:00:00+08:00"}).status_code == 200  # fmt: skip
    assert node.http.post(f"/v1/dossiers/{d}/transfers", headers=node.as_("judge"), json={
        "to_court": "1101-0200", "kind": "上诉", "reason": "被告不服一审判决"}).status_code == 200  # fmt: skip
    view = node.http.get(f"/v1/dossiers/{d}", headers=lawyer).json()
    assert view["case_number"] == CASE and "parties" not in view
    assert view["catalogue"][0]["title"] == "（2026）京0105民初123号 民事起诉状"
    download = node.http.get(f"/v1/dossiers/{d}/files/{up['sha256']}", headers=lawyer)
    assert download.content == complaint
    r = node.http.post(f"/v1/dossiers/{d}/archive", headers=node.as_("archivist"), json={"retention": "永久"})
    assert r.status_code == 200, r.text
    assert _upload(node, d, b"late", "迟到.pdf").json()["code"] == "dossier_archived"
    events = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("judge")).json()
    types = [e["type"] for e in events]
    assert types[:3] == ["Opened", "DocumentUploaded", "Catalogued"] and "Archived" in types
    assert types.count("Retrieved") >= 2  # every read is recorded

    # A receipt for the upload, verified offline by the lawyer's verifier.
    receipt = node.http.get(f"/v1/dossiers/{d}/receipts/2", headers=lawyer)
    assert receipt.status_code == 200, receipt.text
    (tmp_path / "r.json").write_text(json.dumps(receipt.json(), ensure_ascii=False), encoding="utf-8")
    key = node.http.get("/v1/log/key").json()
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"origin": key["origin"], "key": key["verifier_key"]}]}))
    (tmp_path / "起诉状.pdf").write_bytes(complaint)
    assert sifa_verify([str(tmp_path / "起诉状.pdf"), "--receipt", str(tmp_path / "r.json"),
                        "--trust", str(tmp_path / "t.json")]) == 0  # fmt: skip
    proof = node.http.get(f"/v1/dossiers/{d}/receipts/2/tlog-proof", headers=lawyer)  # the C2SP text form
    assert proof.status_code == 200 and proof.text.startswith("c2sp.org/tlog-proof@v1\n"), proof.text
    (tmp_path / "r.tlog-proof").write_text(proof.text, encoding="utf-8")
    assert sifa_verify([str(tmp_path / "起诉状.pdf"), "--receipt", str(tmp_path / "r.tlog-proof"),
                        "--trust", str(tmp_path / "t.json")]) == 0  # fmt: skip

    # Public verification by hash: when and where, never party data.
    public = node.http.post("/v1/verify", json={"sha256": up["sha256"]}).json()
    assert public["recorded"] and public["records"][0]["item"] == "DocumentUploaded"
    assert "张三" not in json.dumps(public, ensure_ascii=False)
    assert not node.http.post("/v1/verify", json={"sha256": "0" * 64}).json()["recorded"]


_numbers = iter(range(1000, 100000))


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ({"X-Content-SHA256": "0" * 64}, 422, "digest_mismatch"),
        ({"X-Content-SHA256": "../../etc/passwd"}, 400, "invalid_digest"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"),
        ({"X-File-Name": "%FF%FE.pdf"}, 400, "invalid_encoding"),
        ({"X-File-Name": quote("bad\x00name.pdf")}, 422, "invalid_input"),
        ({"Authorization": "Bearer sifa_forged"}, 401, "unauthenticated"),
        ({"Authorization": ""}, 401, "unauthenticated"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(node: Node, case: dict[str, str], status: int, code: str) -> None:
    d = _open(node, f"（2026）京0105民初{next(_numbers)}号")
    before = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("judge")).json()
    h = {**node.as_("clerk"), "X-File-Name": quote("证据.pdf"), "Content-Type": "application/pdf", **case}
    body = b"%PDF-1.4 " + b"x" * 5000
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=body, headers=h)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    after = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("judge")).json()
    assert [e["type"] for e in after if e["type"] != "Retrieved"] == [
        e["type"] for e in before if e["type"] != "Retrieved"
    ]


def test_declared_length_over_the_limit_is_refused_before_reading(node: Node) -> None:
    import http.client

    d = _open(node, "（2026）京0105民初778号")
    conn = http.client.HTTPConnection(node.base.removeprefix("http://"), timeout=30)
    conn.putrequest("POST", f"/v1/dossiers/{d}/documents")
    for k, v in {**node.as_("clerk"), "X-File-Name": "big.pdf", "Content-Type": "application/pdf",
                 "Content-Length": str(21 << 20)}.items():  # fmt: skip
        conn.putheader(k, v)
    conn.endheaders(b"%PDF-1.4 only the start")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())["code"]) == (413, "payload_too_large")
    conn.close()


def test_oversized_stream_without_length_is_refused(node: Node) -> None:
    d = _open(node, "（2026）京0105民初777号")
    big = (b"x" * (1 << 20) for _ in range(25))
    h = {**node.as_("clerk"), "X-File-Name": "big.bin", "Content-Type": "application/octet-stream"}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=big, headers=h)
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


def _routes() -> list[APIRoute]:
    routes = list(api_routes(create_app(Settings()).routes))
    assert len(routes) >= 20
    return routes


def test_every_route_names_its_roles() -> None:
    for route in _routes():
        allowed = route_roles(route)
        assert allowed, f"{route.path} has no access rule"
        assert set(allowed) <= {*ROLES, "public", "court"}, route.path  # court: a signed node-to-node request


def _fill(path: str, dossier: str, sha256: str = "a" * 64, version: int = 1) -> str:
    return (path.replace("{dossier}", dossier).replace("{sha256}", sha256).replace("{version}", str(version))
            .replace("{principal}", "00000000-0000-0000-0000-000000000000").replace("{level}", "0")
            .replace("{path:path}", "000"))  # fmt: skip


def test_authorisation_matrix_from_the_route_table(node: Node) -> None:
    """Every endpoint x every role: refused roles get 403, allowed ones never 401/403. Endpoints that
    name a document (a file, an event's receipt) are asked once per volume: a 副卷 document is absent
    (404) for a lawyer or party, there for the court (tests/test_court_only.py: every surface)."""
    d = _open(node, "（2026）京0105民初999号")
    for who in ("lawyer", "party"):
        r = node.http.post(f"/v1/principals/{node.ids[who]}/admissions", json={"dossier": d},
                           headers=node.as_("clerk"))  # fmt: skip
        assert r.status_code == 204
    volumes = {}
    for volume, declared in (("正卷", "起诉状"), ("副卷", "审理报告")):
        up = _upload(node, d, pdf_bytes(1) + volume.encode(), f"{declared}.pdf", **{"X-Doc-Type": quote(declared)})
        assert up.status_code == 201, up.text
        volumes[volume] = (up.json()["sha256"], up.json()["version"] - 1)  # the DocumentUploaded event
    checked = 0
    for route in _routes():
        allowed = route_roles(route)
        names_document = "{sha256}" in route.path or "{version}" in route.path
        for method in route.methods - {"HEAD"}:
            for role in ROLES:
                if "public" in allowed:
                    continue
                if method == "DELETE" and role == "administrator":
                    continue  # would revoke a principal; covered by its own test
                for volume, (sha, version) in volumes.items() if names_document else [("", ("a" * 64, 1))]:
                    r = node.http.request(method, _fill(route.path, d, sha, version), headers=node.as_(role), json={})
                    assert r.status_code < 500, (route.path, method, role, r.text)
                    if role not in allowed:
                        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (route.path, method, role)
                    elif not names_document:
                        assert r.status_code not in (401, 403), (route.path, method, role, r.text)
                    else:
                        expected = 404 if volume == "副卷" and role in ("lawyer", "party") else 200
                        assert r.status_code == expected, (route.path, method, role, volume, r.text)
                    checked += 1
            if "public" not in allowed:
                r = node.http.request(method, _fill(route.path, d), json={})
                assert r.status_code == 401, (route.path, method)
    assert checked > 60


def test_revoked_credential_stops_working(node: Node) -> None:
    r = node.http.post("/v1/principals", json={"name": "临时", "role": "clerk"}, headers=node.as_("administrator"))
    token, ident = r.json()["token"], r.json()["id"]
    assert node.http.post("/v1/dossiers", json={}, headers={"Authorization": f"Bearer {token}"}).status_code == 422
    assert node.http.delete(f"/v1/principals/{ident}", headers=node.as_("administrator")).status_code == 204
    assert node.http.post("/v1/dossiers", json={}, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_schema_is_complete(node: Node) -> None:
    schema: dict[str, Any] = node.http.get("/openapi.json").json()
    assert "/v1/dossiers/{dossier}/documents" in schema["paths"]
    assert all(op.get("x-roles") for p in schema["paths"].values() for op in p.values())


def test_a_credential_is_read_once_for_all_requests_waiting_on_it(tmp_path: Path) -> None:
    """Requests in flight when a busy client's credential is due again share one store read."""
    import asyncio
    import threading
    from types import SimpleNamespace
    from typing import cast

    from api.deps import Services, _authenticate
    from api.principals import AuthError, Caller, Principals
    from dossier.application import sqlite_env
    from tests.dossier_fixtures import CIPHER_KEY

    class Counted(Principals):
        reads = 0
        entered = threading.Event()

        def authenticate(self, token: str) -> Caller:
            type(self).reads += 1
            self.entered.wait(5)  # held until every request has arrived
            return super().authenticate(token)

    people = Counted(sqlite_env(str(tmp_path / "principals.sqlite"), CIPHER_KEY))
    try:
        _, token = people.issue(name="书记员", role="clerk", court="1101-0105", issued_by="test")

        services = cast(Services, SimpleNamespace(principals=people, lookups={}))  # what _authenticate uses

        async def requests() -> list[Caller]:
            waiting = [asyncio.ensure_future(_authenticate(services, token)) for _ in range(20)]
            await asyncio.sleep(0.05)
            Counted.entered.set()
            return await asyncio.gather(*waiting)

        callers = asyncio.run(requests())
        assert Counted.reads == 1 and {c.name for c in callers} == {"书记员"} and not services.lookups
        with pytest.raises(AuthError):  # a bad credential: every waiter hears so, and nothing is kept
            asyncio.run(_authenticate(services, "sifa_" + "x" * 43))
        assert not services.lookups
    finally:
        people.close()


@pytest.mark.parametrize("path", ["/console", "/verify", "/healthz"])
def test_head_is_answered_where_get_is(node: Node, path: str) -> None:
    """HEAD where GET exists (RFC 9110 9.3.2): the GET's status and headers, no body."""
    got, head = node.http.get(path), node.http.head(path)
    assert head.status_code == got.status_code == 200, head.headers
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.content == b""


def test_a_405_names_the_methods_allowed(node: Node) -> None:
    r = node.http.put("/console")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "HEAD"}


def test_the_bearer_scheme_is_case_insensitive(node: Node) -> None:
    """RFC 7235 2.1: the auth scheme is a case-insensitive token."""
    token = node.tokens["clerk"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        r = node.http.get("/v1/me", headers={"Authorization": f"{scheme} {token}"})
        assert r.status_code == 200, (scheme, r.text)
