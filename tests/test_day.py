"""A clerk's, a lawyer's and a party's day over real HTTP: case numbers, finding, reading, files."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.cli import main as sifa
from tests.dossier_fixtures import pdf_bytes
from tests.nodes import Node, serving
from tests.servers import free_port

COURT, DESIGNATOR = "1101-0105", "京0105"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node whose court registry knows its court's 代字 (京0105), one principal of each role."""
    data = tmp_path_factory.mktemp("day") / "data"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        assert sifa(["init", str(data), "--court", COURT, "--name", "北京市朝阳区人民法院",
                     "--designator", DESIGNATOR]) == 0  # fmt: skip
    courts = json.loads((data / "courts.json").read_text(encoding="utf-8"))
    courts["courts"].append({"code": "1101-0200", "name": "北京市第三中级人民法院", "level": "中级",
                             "designator": "京03"})  # fmt: skip
    (data / "courts.json").write_text(json.dumps(courts, ensure_ascii=False), encoding="utf-8")
    with serving(data, capture.getvalue().strip(), max_upload_bytes=20 << 20, seal_interval_seconds=0.01) as n:
        yield n


def open_case(node: Node, number: str, name: str = "张三", role: str = "clerk") -> httpx2.Response:
    return node.http.post("/v1/dossiers", headers=node.as_(role), json={
        "case_number": number, "case_type": "民事", "parties": [{"role": "原告", "name": name}]})  # fmt: skip


def opened(node: Node, number: str, name: str = "张三") -> str:
    r = open_case(node, number, name)
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def upload(node: Node, dossier: str, data: bytes, name: str, role: str = "clerk", **headers: str) -> httpx2.Response:
    h = {**node.as_(role), "X-File-Name": quote(name), "Content-Type": "application/pdf", **headers}
    return node.http.post(f"/v1/dossiers/{dossier}/documents", content=data, headers=h)


# -- 1. case numbers ---------------------------------------------------------------------------------


def test_one_case_number_however_it_is_typed(day: Node) -> None:
    first = opened(day, "（2026）京0105民初901号")
    for typed in ("(2026)京0105民初901号", "（2026） 京0105 民初 0901 号", "（２０２６）京0105民初00901号",
                  "(2026)京0105民初901号\u3000"):  # fmt: skip
        r = open_case(day, typed)
        assert r.status_code == 409, (typed, r.text)
        body = r.json()
        assert body["code"] == "dossier_exists" and body["detail"]["dossier"] == first, body
        assert first in body["message"]
    view = day.http.get(f"/v1/dossiers/{first}", headers=day.as_("clerk")).json()
    assert view["case_number"] == "（2026）京0105民初901号"
    assert opened(day, "(2026)京0105民初902号") != first


def test_a_case_number_of_another_court_is_refused(day: Node) -> None:
    r = open_case(day, "（2026）京0106民初1号")
    assert (r.status_code, r.json()["code"]) == (422, "wrong_court"), r.text
    assert r.json()["detail"] == {"designator": "京0106", "court_designator": DESIGNATOR}
    for bad in ("（2026）京0105民初0号", "（26）京0105民初1号", "2026京0105民初1号"):
        r = open_case(day, bad)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), (bad, r.text)


# -- 2. finding dossiers and people ----------------------------------------------------------------


def _list(node: Node, role: str = "clerk", **params: Any) -> httpx2.Response:
    return node.http.get("/v1/dossiers", params=params, headers=node.as_(role))


def test_search_by_case_number_party_status_and_pages(day: Node) -> None:
    mine = [opened(day, f"（2025）京0105民初{n}号", name=f"王{n}") for n in range(1, 6)]
    opened(day, "（2025）京0105民初6号", name="王1")  # the same party in a second case
    found = _list(day, case_number="(2025) 京0105民初 003号").json()["dossiers"]
    assert [d["id"] for d in found] == [mine[2]] and found[0]["case_number"] == "（2025）京0105民初3号"
    assert found[0]["status"] == "open" and found[0]["url"] == f"/v1/dossiers/{mine[2]}"
    assert len(_list(day, party="王1").json()["dossiers"]) == 2
    assert _list(day, party="王").json()["dossiers"] == []  # exact names only: no substring search
    # Pages: every dossier once, newest first, the last page without a cursor.
    seen: list[str] = []
    cursor = None
    while True:
        page = _list(day, limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [d["id"] for d in page["dossiers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(mine) <= set(seen)
    assert seen.index(mine[4]) < seen.index(mine[0])
    r = day.http.post(f"/v1/dossiers/{mine[0]}/transfers", headers=day.as_("judge"),
                      json={"to_court": "1101-0200", "kind": "上诉", "reason": "测试"})  # fmt: skip
    assert r.status_code == 200, r.text
    transferred = _list(day, status="transferred").json()["dossiers"]
    assert [d["id"] for d in transferred] == [mine[0]]
    today = _list(day, opened_from="2000-01-01", opened_to="2999-12-31", limit=200).json()["dossiers"]
    assert set(mine) <= {d["id"] for d in today}
    assert _list(day, opened_to="2000-01-01").json()["dossiers"] == []


def test_a_lawyer_lists_only_what_they_are_admitted_to(day: Node) -> None:
    admitted, other = opened(day, "（2025）京0105民初71号"), opened(day, "（2025）京0105民初72号")
    r = day.http.post(f"/v1/principals/{day.ids['lawyer']}/admissions", json={"dossier": admitted},
                      headers=day.as_("clerk"))  # fmt: skip
    assert r.status_code == 204, r.text
    ids = [d["id"] for d in _list(day, "lawyer", limit=200).json()["dossiers"]]
    assert admitted in ids and other not in ids
    assert _list(day, "party").json()["dossiers"] == []
    r = _list(day, "lawyer", party="张三")
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    assert _list(day, "administrator").status_code == 403


def test_a_bad_cursor_is_refused(day: Node) -> None:
    r = _list(day, cursor="bm90IGEgY3Vyc29y")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor"), r.text


def test_administrators_list_and_show_principals(day: Node) -> None:
    r = day.http.get("/v1/principals", headers=day.as_("administrator"))
    assert r.status_code == 200, r.text
    listed = {p["id"]: p for p in r.json()["principals"]}
    assert listed[day.ids["clerk"]]["role"] == "clerk" and "token" not in listed[day.ids["clerk"]]
    one = day.http.get(f"/v1/principals/{day.ids['lawyer']}", headers=day.as_("administrator")).json()
    assert one["name"] == "lawyer 测试" and one["revoked"] is False
    assert day.http.get("/v1/principals", headers=day.as_("clerk")).status_code == 403
    r = day.http.get("/v1/principals/not-an-id", headers=day.as_("administrator"))
    assert (r.status_code, r.json()["code"]) == (404, "principal_not_found")


# -- 3. the dossier read shows everything recorded ----------------------------------------------------


def _sealed_view(node: Node, dossier: str, role: str = "clerk") -> dict[str, Any]:
    for _ in range(100):
        view: dict[str, Any] = node.http.get(f"/v1/dossiers/{dossier}", headers=node.as_(role)).json()
        if all(t["leaf_index"] is not None for t in view["timeline"][:-1]):  # the read itself may wait
            return view
        time.sleep(0.05)
    raise AssertionError("not sealed")


def test_the_read_shows_every_record_with_leaf_and_receipt(day: Node) -> None:
    d = opened(day, "（2025）京0105民初301号", name="赵六")
    up = upload(day, d, pdf_bytes(2), "民事起诉状.pdf").json()
    slip = upload(day, d, b"%PDF-1.4 delivery slip", "送达回证.pdf").json()
    ev, contract = hashlib.sha256(b"evidence").hexdigest(), hashlib.sha256(b"contract").hexdigest()
    clerk = day.as_("clerk")
    assert (
        day.http.post(
            f"/v1/dossiers/{d}/evidence",
            headers=clerk,
            json={"sha256": ev, "size": 8, "name": "借条.jpg", "submitter": {"role": "原告", "name": "赵六"}},
        ).status_code
        == 200
    )
    assert (
        day.http.post(
            f"/v1/dossiers/{d}/services",
            headers=clerk,
            json={
                "document_id": up["document_id"],
                "recipient": {"role": "被告", "name": "钱七"},
                "channel": "电子送达平台",
                "sent_at": "2026-11-22T08:00:00+08:00",
                "receipt_sha256": slip["sha256"],
            },
        ).status_code
        == 200
    )
    assert day.http.post(f"/v1/dossiers/{d}/contracts", headers=clerk, json={
        "contract_sha256": contract, "parties": [{"role": "甲方", "name": "赵六"}],
        "signed_at": "2026-01-02T10:00:00+08:00"}).status_code == 200  # fmt: skip
    assert day.http.post(f"/v1/dossiers/{d}/transfers", headers=day.as_("judge"), json={
        "to_court": "1101-0200", "kind": "上诉", "reason": "不服一审判决"}).status_code == 200  # fmt: skip
    view = _sealed_view(day, d)
    doc = view["documents"][up["document_id"]]
    assert doc["sha256"] == up["sha256"] and doc["leaf_index"] is not None and doc["version"] == 2
    assert [e["title"] for e in view["catalogue"]] == ["民事起诉状", "送达回证"]
    [evidence] = view["evidence"]
    assert evidence["sha256"] == ev and evidence["submitter"] == {"role": "原告", "kind": "natural", "name": "赵六"}
    [service] = view["services"]
    assert service["service_receipt"] == {
        "sha256": slip["sha256"],
        "download": f"/v1/dossiers/{d}/files/{slip['sha256']}",
    }
    assert service["recipient"]["name"] == "钱七" and service["sent_at"] == "2026-11-22T00:00:00.000000Z"
    [c] = view["contracts"]
    assert c["contract_sha256"] == contract and c["parties"][0]["role"] == "甲方"
    assert view["transfers"][0]["to_court"] == "1101-0200" and view["archive"] is None
    assert view["received_from"] is None
    names = [t["name"] for t in view["timeline"]]
    assert names[:3] == ["Dossier opened", "Document uploaded", "Catalogued"] and "Contract registered" in names
    for record in (doc, evidence, service, c, view["transfers"][0]):
        r = day.http.get(record["receipt"], headers=clerk)
        assert r.status_code == 200, r.text
        assert r.json()["leaf_index"] == record["leaf_index"]
    # A lawyer admitted to it reads the same records, with roles but not other people's names.
    assert day.http.post(f"/v1/principals/{day.ids['lawyer']}/admissions", json={"dossier": d},
                         headers=clerk).status_code == 204  # fmt: skip
    theirs = _sealed_view(day, d, "lawyer")
    assert theirs["services"][0]["recipient"] == {"role": "被告", "kind": "natural"}
    assert "name" not in theirs["evidence"][0]["submitter"] and "parties" not in theirs


# -- 4. downloads, the 卷内目录, the archive package and its report ---------------------------------------


def test_downloads_name_the_file_and_never_run_in_the_browser(day: Node) -> None:
    d = opened(day, "（2025）京0105民初401号")
    cases = [(pdf_bytes(1), "判决书 终审.pdf", "application/pdf", "inline"),
             (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "图.svg", "image/svg+xml",
              "attachment"),
             (b"<html><script>alert(1)</script></html>", "页面.html", "text/html", "attachment")]  # fmt: skip
    for data, name, media, kind in cases:
        up = upload(day, d, data, name, **{"Content-Type": media})
        assert up.status_code == 201, up.text
        r = day.http.get(f"/v1/dossiers/{d}/files/{up.json()['sha256']}", headers=day.as_("clerk"))
        assert r.status_code == 200 and r.content == data
        cd = r.headers["content-disposition"]
        assert cd.startswith(f'{kind}; filename="') and cd.endswith(f"filename*=UTF-8''{quote(name, safe='')}"), cd
        assert cd.isascii() and r.headers["x-content-type-options"] == "nosniff"
        if kind == "attachment":
            assert "sandbox" in r.headers["content-security-policy"]


def test_the_catalogue_table_numbers_every_page_and_the_archive_is_fetched(day: Node) -> None:
    d = opened(day, "（2025）京0105民初402号")
    for data, name, media in ((pdf_bytes(2), "民事起诉状.pdf", "application/pdf"),
                              (b"ID3\x04\x00" + bytes(200), "庭审录音.mp3", "audio/mpeg"),
                              (pdf_bytes(3), "证据材料.pdf", "application/pdf")):  # fmt: skip
        assert upload(day, d, data, name, **{"Content-Type": media}).status_code == 201
    table = day.http.get(f"/v1/dossiers/{d}/catalogue", headers=day.as_("clerk"))
    assert table.status_code == 200, table.text
    t = table.json()
    assert list(t["columns"].values()) == ["序号", "文号", "责任者", "题名", "日期", "起止页号", "备注"]
    rows = [(r["no"], r["title"], r["pages"], r["remarks"]) for r in t["rows"]]
    assert rows == [(1, "民事起诉状", "1–2", ""), (2, "证据材料", "3–5", ""), (3, "庭审录音", "6", "页数未知，按1页计")]
    assert t["rows"][0]["author"] == "北京市朝阳区人民法院" and len(t["rows"][0]["date"]) == 10
    clerk = day.as_("clerk")
    r = day.http.get(f"/v1/dossiers/{d}/archive/report", headers=clerk)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_document")
    r = day.http.post(f"/v1/dossiers/{d}/archive", headers=day.as_("archivist"), json={"retention": "永久"})
    assert r.status_code == 200, r.text
    package = day.http.get(f"/v1/dossiers/{d}/archive/package", headers=day.as_("archivist"))
    assert package.status_code == 200, package.text
    view = day.http.get(f"/v1/dossiers/{d}", headers=clerk).json()
    assert hashlib.sha256(package.content).hexdigest() == view["archive"]["package_sha256"]
    assert "filename*=UTF-8''" in package.headers["content-disposition"]
    report = day.http.get(view["archive"]["report"], headers=clerk).json()
    assert report.get("passed") and report["dossier"] == d, report
    assert any("庭审录音.mp3" in c for c in report["properties"]["完整性"]["checks"])
    assert day.http.get(f"/v1/dossiers/{d}/archive/package", headers=day.as_("lawyer")).status_code == 403


def test_a_receipt_is_fetched_by_the_files_hash(day: Node) -> None:
    d = opened(day, "（2025）京0105民初403号")
    data = pdf_bytes(1)
    up = upload(day, d, data, "答辩状.pdf").json()
    r = day.http.get(f"/v1/dossiers/{d}/files/{up['sha256']}/receipt", headers=day.as_("clerk"))
    assert r.status_code == 200, r.text
    leaf = json.loads(base64.b64decode(r.json()["leaf_data"]))
    assert leaf["type"] == "DocumentUploaded" and up["sha256"] in json.dumps(leaf)
    missing = day.http.get(f"/v1/dossiers/{d}/files/{'0' * 64}/receipt", headers=day.as_("clerk"))
    assert missing.status_code == 404


# -- 5. uploads ----------------------------------------------------------------------------------------


def test_an_upload_names_its_event_and_receipt_and_the_content_decides_the_type(day: Node) -> None:
    d = opened(day, "（2025）京0105民初501号")
    data = pdf_bytes(3)
    r = day.http.post(
        f"/v1/dossiers/{d}/documents", content=data, headers={**day.as_("clerk"), "X-File-Name": quote("起诉状.pdf")}
    )  # no Content-Type at all
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["media_type"], up["pages"], up["event"]) == ("application/pdf", 3, "DocumentUploaded")
    assert (
        up["receipt"] == f"/v1/dossiers/{d}/receipts/{up['event_version']}" and up["version"] == up["event_version"] + 1
    )
    receipt = day.http.get(up["receipt"], headers=day.as_("clerk"))
    assert receipt.status_code == 200, receipt.text
    leaf = json.loads(base64.b64decode(receipt.json()["leaf_data"]))
    assert leaf["type"] == "DocumentUploaded" and up["sha256"] in json.dumps(leaf)
    # The same file again adds nothing: the answer names the first document (200, not 201).
    again = upload(day, d, data, "起诉状（重发）.pdf")
    assert again.status_code == 200, again.text
    assert again.json()["document_id"] == up["document_id"] and again.json()["already_recorded"] is True
    assert again.json()["receipt"] == up["receipt"]
    view = day.http.get(f"/v1/dossiers/{d}", headers=day.as_("clerk")).json()
    assert len(view["documents"]) == 1
    # A JPEG sent as a PDF is refused, and nothing is recorded.
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
    r = upload(day, d, jpeg, "照片.pdf")
    assert (r.status_code, r.json()["code"]) == (415, "media_type_mismatch"), r.text
    assert r.json()["detail"] == {"declared": "application/pdf", "found": "image/jpeg"}
    assert upload(day, d, jpeg, "照片.jpg", **{"Content-Type": "image/jpeg"}).status_code == 201
    assert len(day.http.get(f"/v1/dossiers/{d}", headers=day.as_("clerk")).json()["documents"]) == 2


@pytest.mark.parametrize(("data", "found"), [
    (b"%PDF-1.7\n", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff\xdb", "image/jpeg"),
    (b"GIF89a\x01\x00", "image/gif"), (b"GIF87a", "image/gif"),
    (b"ID3\x04\x00", "audio/mpeg"), (b"\xff\xfb\x90\x00", "audio/mpeg"), (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
    (b"PK\x03\x04" + bytes(22) + b"\x07\x00\x00\x00OFD.xml", "application/ofd"),
    (b"PK\x03\x04" + bytes(22) + b"\x13\x00\x00\x00[Content_Types].xml",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("起诉状：原告张三".encode(), "text/plain"), ("起诉状".encode()[:-1], "text/plain"), (b"\x00\x01\x02", None),
])  # fmt: skip
def test_media_types_are_recognised_from_the_first_bytes(data: bytes, found: str | None) -> None:
    from dossier.media import sniff

    assert sniff(data) == found


def test_a_form_upload_of_many_files_is_streamed_part_by_part(day: Node, tmp_path: Path) -> None:
    d = opened(day, "（2025）京0105民初502号")
    big = b"\x00\x00\x00\x18ftypmp42" + os.urandom(12 << 20)  # larger than any chunk the server reads
    files = [("file", ("起诉状.pdf", pdf_bytes(2), "application/pdf")), ("file", ("庭审录像.mp4", big, "video/mp4"))]
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", files=files, data={"doc_type": "起诉状"},
                      headers=day.as_("clerk"))  # fmt: skip
    assert r.status_code == 201, r.text
    first, second = r.json()["documents"]
    assert (first["pages"], first["category"], first["media_type"]) == (2, "起诉状", "application/pdf")
    assert second["sha256"] == hashlib.sha256(big).hexdigest() and second["size"] == len(big)
    view = day.http.get(f"/v1/dossiers/{d}", headers=day.as_("clerk")).json()
    assert {doc["name"] for doc in view["documents"].values()} == {"起诉状.pdf", "庭审录像.mp4"}
    # As curl -F sends it: the type guessed from the name is checked against the content.
    if shutil.which("curl"):
        (tmp_path / "答辩状.txt").write_text("答辩意见：被告不同意原告诉请。", encoding="utf-8")
        out = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {day.tokens['lawyer']}", "-F",
                              f"file=@{tmp_path / '答辩状.txt'}", f"{day.base}/v1/dossiers/{d}/documents/form"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert json.loads(out.stdout)["code"] == "dossier_not_found"  # not admitted here: as if absent
        out = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {day.tokens['clerk']}", "-F",
                              f"file=@{tmp_path / '答辩状.txt'}", f"{day.base}/v1/dossiers/{d}/documents/form"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        [doc] = json.loads(out.stdout)["documents"]
        assert doc["media_type"] == "text/plain" and doc["category"] == "答辩状"
    # A form without a file, and one cut off, record nothing.
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", data={"doc_type": "起诉状"}, files={},
                      headers={**day.as_("clerk"), "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (400, "malformed_form"), r.text
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf a file'
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", content=body,
                      headers={**day.as_("clerk"), "Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (400, "malformed_form"), r.text
    assert len(day.http.get(f"/v1/dossiers/{d}", headers=day.as_("clerk")).json()["documents"]) == 3


# -- 6. talking to people --------------------------------------------------------------------------------


def test_verdicts_show_beijing_time_and_never_a_placeholder() -> None:
    from verifier.cli import _facts, beijing
    from verifier.result import VerifyResult

    assert beijing("2026-11-22T16:30:00.000000Z") == "2026-11-23 00:30:00 北京时间 (UTC+8)"
    partial = VerifyResult(False, [], {"dossier": "6454039c", "case_number": None, "court": None, "files": 1,
                                       "log": "sifa.court/1101-0105", "tree_size": 9, "events": 3,
                                       "files_verified": 0})  # fmt: skip
    said = _facts(partial)
    assert "None" not in said and "?" not in said and "6454039c" in said and "of court" not in said


def test_the_index_follows_either_event_store(stack: Any, tmp_path: Path) -> None:
    """The index is a projection of the notification log: the same on SQLite and PostgreSQL, and a
    long run of events it does not watch (reads) is passed over once."""
    from dossier.index import DossierIndex, Query

    app = stack.app
    act = {"actor": "clerk:t", "role": "clerk"}
    ids = [app.open_dossier(case_number_text=f"（2026）京0105民初{n}号", case_type="民事",
                            parties=[{"role": "原告", "name": f"周{n}"}], **act) for n in (1, 2, 3)]  # fmt: skip
    for _ in range(5):
        app.retrieve(ids[0], by_court=app.court, by="clerk:t", reason="阅卷", **act)
    index = DossierIndex(tmp_path / "index.sqlite3", b"key")
    assert index.catch_up(app) == 3
    assert [e.id for e in index.search(Query(holder=app.court, party="周2")).entries] == [str(ids[1])]
    app.archive(ids[2], retention="永久", package_sha256="ab" * 32, **act)
    assert index.catch_up(app) == 1 and index.catch_up(app) == 0
    [archived] = index.search(Query(holder=app.court, status="archived")).entries
    assert archived.id == str(ids[2]) and archived.case_number == "（2026）京0105民初3号"
    stored = (tmp_path / "index.sqlite3").read_bytes()
    assert "周".encode() not in stored and "民初".encode() not in stored  # no name, no case number in clear


def test_a_large_form_upload_is_never_held_in_memory(tmp_path: Path) -> None:
    """256 MiB sent as multipart/form-data to `sifa serve` (its own process): its peak memory grows by
    far less than the file (parts stream through a bounded queue to the blob store)."""
    from tests.servers import wait_for_port

    data = tmp_path / "data"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["init", str(data), "--court", COURT, "--name", "北京市朝阳区人民法院"]) == 0
    admin = {"Authorization": f"Bearer {out.getvalue().strip()}"}
    port = free_port()
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port), "SIFA_MAX_UPLOAD_BYTES": str(300 << 20),
           "SIFA_ACCESS_LOG": "false"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        http = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
        clerk = {"Authorization": "Bearer " + http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                                                        headers=admin).json()["token"]}  # fmt: skip
        d = http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初1号", "case_type": "民事"},
                      headers=clerk).json()["dossier"]  # fmt: skip

        def peak() -> int:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])

        before = peak()
        block = hashlib.sha256(b"sifa").digest() * (1 << 15)  # 1 MiB

        def body() -> Iterator[bytes]:
            yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="lu.mp4"\r\n'
            yield b"Content-Type: video/mp4\r\n\r\n\x00\x00\x00\x18ftypmp42"
            for _ in range(256):
                yield block
            yield b"\r\n--B--\r\n"

        r = http.post(f"/v1/dossiers/{d}/documents/form", content=body(),
                      headers={**clerk, "Content-Type": "multipart/form-data; boundary=B"})  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["documents"][0]["size"] == 256 * len(block) + 12
        growth = peak() - before
        assert growth < 64 << 10, f"peak memory grew by {growth} KiB for a 256 MiB upload"
        http.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_a_form_refused_part_way_says_what_it_recorded(day: Node) -> None:
    """A form whose later part is refused (a file not of its declared type, a part too many) after
    earlier files were recorded answers 207: the files recorded, and why the rest were not. Once such
    a form answered 415 or 400 and the client never learnt of the files already recorded."""
    d = opened(day, "（2025）京0105民初503号")
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    files = [("file", ("起诉状.pdf", pdf_bytes(2), "application/pdf")), ("file", ("证据.pdf", png, "application/pdf")),
             ("file", ("答辩状.pdf", pdf_bytes(3), "application/pdf"))]  # fmt: skip
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", files=files, headers=day.as_("clerk"))
    assert r.status_code == 207, r.text
    body = r.json()
    assert [doc["sha256"] for doc in body["documents"]] == [hashlib.sha256(pdf_bytes(2)).hexdigest()]
    assert (body["refused"]["code"], body["refused"]["after"]) == ("media_type_mismatch", 1)
    view = day.http.get(f"/v1/dossiers/{d}", headers=day.as_("clerk")).json()
    assert {doc["name"] for doc in view["documents"].values()} == {"起诉状.pdf"}
    # A part too many, after a file: the file is recorded and said; the form's end is refused.
    boundary = "sifa-b"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
             "Content-Type: text/plain\r\n\r\n甲方的陈述\r\n"]  # fmt: skip
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="n{i}"\r\n\r\nx\r\n' for i in range(1000)]
    content = ("".join(parts) + f"--{boundary}--\r\n").encode()
    form = {**day.as_("clerk"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", content=content, headers=form)
    assert r.status_code == 207, r.text
    assert [doc["sha256"] for doc in r.json()["documents"]] == [hashlib.sha256("甲方的陈述".encode()).hexdigest()]
    assert r.json()["refused"]["code"] == "malformed_form"
    # Nothing recorded before the refusal: the refusal itself, as before.
    r = day.http.post(f"/v1/dossiers/{d}/documents/form", files=[("file", ("图.pdf", png, "application/pdf"))],
                      headers=day.as_("clerk"))  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (415, "media_type_mismatch")
