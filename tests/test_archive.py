"""Archiving (归档) through the API: the four-property check (四性检测) gates it, the archive
package is a verifiable BagIt bag locked with every file; a dossier's package verifies offline."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfWriter

from api.app import create_app
from api.settings import Settings
from evidence.package import INSPECTION, read_package_bytes
from ledger.note import Ed25519Verifier
from storage.filesystem import FilesystemBlobStore
from storage.s3 import S3BlobStore
from tests.dossier_fixtures import Stack, pdf_bytes
from tests.nodes import Node, init
from tests.servers import MotoServer

ROOT = Path(__file__).resolve().parent.parent


def js_pdf() -> bytes:
    """A one-page PDF that runs JavaScript when opened (written by hand: pypdf 7 cannot add it)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]  # fmt: skip
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def encrypted_pdf() -> bytes:
    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    w.encrypt("secret")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def png(width: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _open(node: Node, number: str) -> str:
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"), json={
        "case_number": number, "case_type": "民事", "parties": [{"role": "原告", "name": "张三"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def _upload(node: Node, d: str, data: bytes, name: str, media: str) -> dict[str, Any]:
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=data, headers={
        **node.as_("clerk"), "X-File-Name": quote(name), "Content-Type": media})  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def _trust(node: Node, path: Path) -> Path:
    key = node.http.get("/v1/log/key").json()
    path.write_text(json.dumps({"logs": [{"origin": key["origin"], "key": key["verifier_key"]}]}))
    return path


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verifier.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_a_clean_dossier_archives_with_a_verifiable_locked_package(node: Node, tmp_path: Path) -> None:
    d = _open(node, "（2026）京0105民初4001号")
    complaint = _upload(node, d, pdf_bytes(3), "民事起诉状.pdf", "application/pdf")
    photo = _upload(node, d, png(), "现场照片.png", "image/png")
    # An image has no PDF pages: the clerk catalogues it by hand with its page count.
    r = node.http.post(f"/v1/dossiers/{d}/catalogue", headers=node.as_("clerk"), json={
        "document_id": photo["document_id"], "volume": "正卷", "category": "证据材料", "order": 50,
        "title": "现场照片", "pages": 1})  # fmt: skip
    assert r.status_code == 200, r.text
    report = node.http.get(f"/v1/dossiers/{d}/inspection", headers=node.as_("archivist")).json()
    assert report["passed"], report
    assert set(report["properties"]) == {"真实性", "完整性", "可用性", "安全性"}
    r = node.http.post(f"/v1/dossiers/{d}/archive", headers=node.as_("archivist"), json={"retention": "30"})
    assert r.status_code == 200, r.text
    events = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("clerk")).json()
    archived = [e for e in events if e["type"] == "Archived"]
    assert len(archived) == 1
    receipt = node.http.get(f"/v1/dossiers/{d}/receipts/{archived[0]['version']}", headers=node.as_("clerk")).json()
    package_sha = next(
        f["sha256"]
        for f in json.loads(base64.b64decode(receipt["leaf_data"]))["files"]
        if f["field"] == "package_sha256"
    )
    blobs = FilesystemBlobStore(node.data / "blobs")
    for sha in (package_sha, complaint["sha256"], photo["sha256"]):
        assert blobs.stat(sha).locked_until is not None  # WORM for the retention period
    data = b"".join(blobs.read(package_sha))
    key = node.http.get("/v1/log/key").json()
    package = read_package_bytes(data, [Ed25519Verifier.from_vkey(key["verifier_key"])])
    assert package.info["Sifa-Purpose"] == "归档"
    assert json.loads(package.tags[INSPECTION])["passed"] is True
    assert {complaint["sha256"], photo["sha256"]} == set(package.files)
    # The archive package verifies offline, whole, with the lawyer's verifier.
    (tmp_path / "archive.tar").write_bytes(data)
    ok = _verify("--dossier", str(tmp_path / "archive.tar"), "--trust", str(_trust(node, tmp_path / "t.json")),
                 "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["valid"] and result["case_number"] == "（2026）京0105民初4001号"
    assert "有效 VALID" in ok.stderr


def test_failing_four_property_check_blocks_archiving(node: Node) -> None:
    d = _open(node, "（2026）京0105民初4002号")
    _upload(node, d, encrypted_pdf(), "加密.pdf", "application/pdf")
    _upload(node, d, js_pdf(), "带脚本.pdf", "application/pdf")
    _upload(node, d, b"MZ\x90\x00 not kept", "工具.exe", "application/x-msdownload")
    _upload(node, d, png()[:60], "截断照片.png", "image/png")
    r = node.http.post(f"/v1/dossiers/{d}/archive", headers=node.as_("archivist"), json={"retention": "永久"})
    assert (r.status_code, r.json()["code"]) == (422, "archive_check_failed"), r.text
    report = r.json()["detail"]["report"]
    assert not report["passed"]
    found = {(p, f["item"]) for p, v in report["properties"].items() for f in v["findings"]}
    assert ("安全性", "加密.pdf") in found
    assert ("安全性", "带脚本.pdf") in found
    assert ("可用性", "工具.exe") in found
    assert ("可用性", "截断照片.png") in found
    # An image without a page count is counted as one page (dossier/directory.py), and the check says so.
    assert ("完整性", "截断照片.png") not in found
    assert any("截断照片.png" in c and "按1页计" in c for c in report["properties"]["完整性"]["checks"])
    assert report["properties"]["真实性"]["passed"]
    # Nothing was archived: the dossier still takes documents.
    _upload(node, d, pdf_bytes(1), "补充材料.pdf", "application/pdf")


def test_package_download_verifies_and_a_changed_byte_does_not(node: Node, tmp_path: Path) -> None:
    d = _open(node, "（2026）京0105民初4003号")
    _upload(node, d, pdf_bytes(2), "答辩状.pdf", "application/pdf")
    trust = _trust(node, tmp_path / "t.json")
    with node.http.stream("GET", f"/v1/dossiers/{d}/package", headers=node.as_("clerk")) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
        assert int(r.headers["content-length"]) > 0
        data = r.read()
    assert len(data) == int(r.headers["content-length"])
    (tmp_path / "p.tar").write_bytes(data)
    assert _verify("--dossier", str(tmp_path / "p.tar"), "--trust", str(trust)).returncode == 0
    # Staff get every field (disclosures opening the leaves' commitments); a lawyer's copy what their
    # role reads: the parties, never who recorded what (other principals' ids).
    staff = read_package_bytes(data, [Ed25519Verifier.from_vkey(node.http.get("/v1/log/key").json()["verifier_key"])])
    assert staff.events[0].doc["body"]["parties"][0]["name"] == "张三"
    node.http.post(f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d}, headers=node.as_("clerk"))
    lawyers = node.http.get(f"/v1/dossiers/{d}/package", headers=node.as_("lawyer")).content
    assert f"clerk:{node.ids['clerk']}".encode() not in lawyers and "张三".encode() in lawyers
    # One byte of the file changed: exit 1, the file named.
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        member = next(m for m in t.getmembers() if m.name.startswith("data/"))
    at = data.index(b"%PDF", data.index(member.name.encode())) + 20
    changed = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    (tmp_path / "bad.tar").write_bytes(changed)
    bad = _verify("--dossier", str(tmp_path / "bad.tar"), "--trust", str(trust), "--json")
    assert bad.returncode == 1, bad.stderr
    failed = [c for c in json.loads(bad.stdout)["checks"] if not c["ok"]]
    assert len(failed) == 1 and member.name in failed[0]["detail"]
    assert _verify("--dossier", str(tmp_path / "missing.tar"), "--trust", str(trust)).returncode == 2
    assert hashlib.sha256(data).hexdigest() != hashlib.sha256(changed).hexdigest()


def test_peer_route_refuses_bearer_and_unsigned_callers(node: Node) -> None:
    d = _open(node, "（2026）京0105民初4004号")
    r = node.http.get(f"/v1/peer/dossiers/{d}/package", headers=node.as_("clerk"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = httpx2.get(f"{node.base}/v1/peer/dossiers/{d}/package")
    assert (r.status_code, r.json()["code"]) == (401, "request_unsigned")


def test_archive_on_s3_sets_object_lock_compliance(s3_server: MotoServer, tmp_path: Path) -> None:
    """On S3 (moto over real HTTP), the archive package and every file get COMPLIANCE retention."""
    data = tmp_path / "node"
    admin = {"Authorization": f"Bearer {init(data)}"}
    settings = Settings(data_dir=data, seal_interval_seconds=0.01, sequencer="thread", s3_endpoint=s3_server.endpoint,
                        s3_secure=False, s3_bucket="archive-lock", s3_access_key=s3_server.access_key,
                        s3_secret_key=s3_server.secret_key)  # fmt: skip
    with TestClient(create_app(settings)) as http:
        staff = {}
        for role in ("clerk", "archivist"):
            r = http.post("/v1/principals", headers=admin, json={"name": role, "role": role})
            staff[role] = {"Authorization": "Bearer " + r.json()["token"]}
        opened = {"case_number": "（2026）京0105民初4005号", "case_type": "民事"}
        d = http.post("/v1/dossiers", headers=staff["clerk"], json=opened).json()["dossier"]
        up = http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(2), headers={
            **staff["clerk"], "X-File-Name": quote("判决书.pdf"), "Content-Type": "application/pdf"})  # fmt: skip
        assert up.status_code == 201, up.text
        r = http.post(f"/v1/dossiers/{d}/archive", headers=staff["archivist"], json={"retention": "短期"})
        assert r.status_code == 200, r.text
        receipt = http.get(f"/v1/dossiers/{d}/receipts/{r.json()['version']}", headers=staff["clerk"]).json()
    package_sha = next(
        f["sha256"]
        for f in json.loads(base64.b64decode(receipt["leaf_data"]))["files"]
        if f["field"] == "package_sha256"
    )
    store = S3BlobStore(s3_server.endpoint, "archive-lock", s3_server.access_key, s3_server.secret_key, secure=False)
    try:
        for sha in (package_sha, up.json()["sha256"]):
            until = store.stat(sha).locked_until
            assert until is not None and until.year >= datetime.now(UTC).year + 10
        # retention is never shortened: a shorter lock keeps the longer time
        kept = store.stat(package_sha).locked_until
        assert store.lock(package_sha, datetime.now(UTC) + timedelta(days=1)).locked_until == kept
        assert store.stat(package_sha).locked_until == kept
    finally:
        store.close()


def test_the_inspection_is_a_typed_report_with_the_json_shape_of_old(stack: Stack) -> None:
    """dossier/inspection.py returns an InspectionReport; its to_json is sifa/inspection.json as before."""
    from dossier.inspection import InspectionReport, inspect

    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初901号", case_type="民事", parties=[],
                         actor="clerk:li", role="clerk")  # fmt: skip
    app.upload(d, iter([pdf_bytes(2)]), name="起诉状.pdf", media_type="application/pdf", source="court",
               doc_type=None, actor="clerk:li", role="clerk")  # fmt: skip
    app.upload(d, iter([b"not a png"]), name="photo.png", media_type="image/png", source="court", doc_type=None,
               actor="clerk:li", role="clerk")  # fmt: skip
    stack.sealer.seal()
    report = inspect(stack.sealer, str(d), stack.signer.verifier)
    assert isinstance(report, InspectionReport) and report.version == 5
    assert not report.passed and report.failed == ["可用性"]  # does not decode (no page count: counted as one page)
    doc = report.to_json()
    assert list(doc) == ["format", "dossier", "case_number", "version", "at", "passed", "properties"]
    assert list(doc["properties"]) == ["真实性", "完整性", "可用性", "安全性"]
    assert doc["properties"]["可用性"]["findings"][0]["item"] == "photo.png"
    assert list(doc["properties"]["可用性"]) == ["passed", "checks", "findings"]


def test_archiving_reads_each_file_from_the_store_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inspection's verified copies feed the package (as the archive handler does): one read per file."""
    from dossier.inspection import Copies, inspect
    from dossier.package import plan_package

    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初902号", case_type="民事", parties=[],
                         actor="clerk:li", role="clerk")  # fmt: skip
    files = [pdf_bytes(n) for n in (1, 2, 3)]
    for i, data in enumerate(files):
        app.upload(d, iter([data]), name=f"证据{i}.pdf", media_type="application/pdf", source="court",
                   doc_type=None, actor="clerk:li", role="clerk")  # fmt: skip
    stack.sealer.seal()
    reads: list[str] = []
    read = app.blobs.read

    def counted(sha256: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(sha256)
        return read(sha256, *args, **kwargs)

    monkeypatch.setattr(app.blobs, "read", counted)
    with Copies(app.blobs) as copies:
        report = inspect(stack.sealer, str(d), stack.signer.verifier, keep=copies)
        assert report.passed, report.to_json()
        plan = plan_package(stack.sealer, d, court_name="北京市朝阳区人民法院", purpose="归档",
                            inspection=report.to_json())  # fmt: skip
        package = b"".join(plan.stream(copies))
    assert sorted(reads) == sorted(hashlib.sha256(f).hexdigest() for f in files)
    assert len(package) == plan.size and all(f in package for f in files)


def _archive_now(stack: Stack, d: Any, retention: str) -> int:
    import asyncio

    from dossier.usecases import archive

    return asyncio.run(archive(stack.sealer, str(d), retention=retention, court_name="北京市朝阳区人民法院",
                               log_key=stack.signer.verifier, actor="archivist:wang", role="archivist",
                               guard=lambda _: None))  # fmt: skip


def test_two_archives_sharing_a_file_at_once_both_hold_it_for_the_longer_retention(stack: Stack) -> None:
    """Attack F1: two dossiers share a file and are archived at once, 永久 and 1 year: neither fails
    (it was 400 storage_error) and the shared file stays locked for 永久 whichever locks last."""
    import threading

    from dossier.usecases import retention_until

    app, shared = stack.app, pdf_bytes(3)
    for round_ in range(3):
        ds = []
        for i in range(2):
            d = app.open_dossier(case_number_text=f"（2026）京0105民初{950 + 2 * round_ + i}号", case_type="民事",
                                 parties=[], actor="clerk:li", role="clerk")  # fmt: skip
            app.upload(d, iter([shared]), name="共用证据.pdf", media_type="application/pdf", source="court",
                       doc_type=None, actor="clerk:li", role="clerk")  # fmt: skip
            ds.append(d)
        stack.sealer.seal()
        start, out = threading.Barrier(2), {}

        def run(d: Any, retention: str, start: threading.Barrier = start, out: dict[str, Any] = out) -> None:
            start.wait()
            try:
                out[retention] = _archive_now(stack, d, retention)
            except Exception as exc:
                out[retention] = exc

        threads = [threading.Thread(target=run, args=a) for a in ((ds[0], "永久"), (ds[1], "1"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(isinstance(v, int) for v in out.values()), out
        until = app.blobs.stat(hashlib.sha256(shared).hexdigest()).locked_until
        assert until is not None and until >= retention_until("永久") - timedelta(minutes=5)


def test_an_archive_refused_because_an_upload_raced_it_locks_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack F6: an upload lands while the archive package is written; the archive is refused (409)
    and leaves nothing locked (it locked every file and its package for the full retention)."""
    from dossier.errors import DossierConflictError

    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初960号", case_type="民事", parties=[],
                         actor="clerk:li", role="clerk")  # fmt: skip
    first = pdf_bytes(2)
    app.upload(d, iter([first]), name="起诉状.pdf", media_type="application/pdf", source="court", doc_type=None,
               actor="clerk:li", role="clerk")  # fmt: skip
    stack.sealer.seal()
    put, puts, raced = app.blobs.put, [], []

    def racing_put(source: Any, expected_sha256: str | None = None) -> Any:
        if not raced:  # the archive package: a clerk's upload lands meanwhile
            raced.append(True)
            app.upload(d, iter([pdf_bytes(4)]), name="补充证据.pdf", media_type="application/pdf", source="court",
                       doc_type=None, actor="clerk:li", role="clerk")  # fmt: skip
        info = put(source, expected_sha256)
        puts.append(info.sha256)
        return info

    monkeypatch.setattr(app.blobs, "put", racing_put)
    with pytest.raises(DossierConflictError):
        _archive_now(stack, d, "永久")
    monkeypatch.undo()
    assert len(puts) == 2  # the late upload's file, the package
    for sha in [hashlib.sha256(first).hexdigest(), *puts]:
        assert app.blobs.stat(sha).locked_until is None, sha
    assert app.get(str(d)).archived is None
    stack.sealer.seal()
    assert _archive_now(stack, d, "永久") > 0  # archived once nothing races it, and locked then
    assert app.blobs.stat(hashlib.sha256(first).hexdigest()).locked_until is not None


def test_two_archives_sharing_a_file_at_once_over_http(node: Node) -> None:
    """Attack F1 over HTTP: two archives at once (永久 and 1 year) of dossiers sharing a file both
    answer 200 (one was 400 storage_error) and the file's record reads the 永久 lock."""
    import threading

    shared = pdf_bytes(2)
    ds = [_open(node, f"（2026）京0105民初{4101 + i}号") for i in range(2)]
    for d in ds:
        _upload(node, d, shared, "共用证据.pdf", "application/pdf")
    start, answers = threading.Barrier(2), {}

    def archive(d: str, retention: str) -> None:
        with httpx2.Client(base_url=str(node.http.base_url), timeout=60) as http:
            start.wait()
            answers[retention] = http.post(f"/v1/dossiers/{d}/archive", headers=node.as_("archivist"),
                                           json={"retention": retention})  # fmt: skip

    threads = [threading.Thread(target=archive, args=a) for a in ((ds[0], "永久"), (ds[1], "1"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: r.status_code for k, r in answers.items()} == {"永久": 200, "1": 200}, {
        k: r.text for k, r in answers.items()}  # fmt: skip
    until = FilesystemBlobStore(node.data / "blobs").stat(hashlib.sha256(shared).hexdigest()).locked_until
    assert until is not None and until.year >= datetime.now(UTC).year + 99


def test_locks_an_archive_could_not_set_are_set_when_it_is_archived_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F6's order (recorded, then locked): a store failing while the locks are set leaves the
    dossier archived with its package unlocked; archiving it again sets the locks, then answers
    that it is archived."""
    from dossier.errors import DossierArchivedError
    from storage.errors import StorageUnavailableError

    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初970号", case_type="民事", parties=[],
                         actor="clerk:li", role="clerk")  # fmt: skip
    data = pdf_bytes(2)
    app.upload(d, iter([data]), name="起诉状.pdf", media_type="application/pdf", source="court", doc_type=None,
               actor="clerk:li", role="clerk")  # fmt: skip
    stack.sealer.seal()

    def down(sha256: str, until: datetime) -> Any:
        raise StorageUnavailableError("the S3 endpoint does not answer")

    monkeypatch.setattr(app.blobs, "lock", down)
    with pytest.raises(StorageUnavailableError):
        _archive_now(stack, d, "永久")
    monkeypatch.undo()
    archived = app.get(str(d)).archived
    assert archived is not None and app.blobs.stat(archived["package_sha256"]).locked_until is None
    stack.sealer.seal()
    with pytest.raises(DossierArchivedError):
        _archive_now(stack, d, "永久")
    for sha in (archived["package_sha256"], hashlib.sha256(data).hexdigest()):
        until = app.blobs.stat(sha).locked_until
        assert until is not None and until.year >= datetime.now(UTC).year + 99
