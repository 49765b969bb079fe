"""Fixity (dossier/fixity.py): scheduled re-hash at a bounded rate, alarm, repair from another copy,
the repair recorded as an event."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as sifa
from api.settings import Settings
from dossier.audit import audit
from dossier.fixity import CopiesDir, Fixity, collect
from storage.filesystem import FilesystemBlobStore, set_immutable
from storage.s3 import S3BlobStore
from tests.dossier_fixtures import Stack, pdf_bytes
from tests.nodes import Serve, Writer, init
from tests.servers import MotoServer

ACT = {"actor": "clerk-1", "role": "clerk"}


def corrupt(blobs: FilesystemBlobStore, sha: str, data: bytes = b"rot") -> None:
    """Change a stored blob's bytes behind the store's back (bit rot, an intruder)."""
    path = blobs.path(sha)
    set_immutable(path, False)
    os.chmod(path, 0o600)
    with path.open("r+b") as f:
        f.write(data)


def copy_into(root: Path, data: bytes) -> str:
    """A content-addressed copy, laid out as a ``sifa backup`` dir holds it."""
    sha = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / sha[:2] / sha[2:4] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha


def upload(stack: Stack, d: Any, data: bytes, name: str) -> str:
    up = stack.app.upload(d, iter([data]), name=name, media_type="text/plain", source="court", doc_type=None, **ACT)
    sha: str = up["sha256"]
    return sha


def test_a_sweep_alarms_repairs_from_a_copy_and_records_the_repair(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blobs = stack.app.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    d = stack.app.open_dossier(case_number_text="（2026）京0105民初601号", case_type="民事", parties=[], **ACT)
    kept, lost = "起诉状：请求判令被告偿还借款".encode(), "答辩状：不同意原告诉请".encode()
    good, bad = upload(stack, d, kept, "起诉状.txt"), upload(stack, d, lost, "答辩状.txt")
    assert copy_into(tmp_path / "backup", kept) == good  # only the first has another copy
    corrupt(blobs, good)
    corrupt(blobs, bad)
    with caplog.at_level(logging.ERROR):
        report = Fixity(stack.app, blobs, bytes_per_second=0, sources=[CopiesDir(tmp_path / "backup")]).sweep()
    assert report.checked == 2 and sorted(report.corrupt) == sorted([good, bad])
    assert report.repaired == {good: f"copies {tmp_path / 'backup'}"} and not report.clean
    assert f"ALARM: blob {bad} is corrupt" in caplog.text and f"blob {bad} could not be repaired" in caplog.text
    assert b"".join(blobs.read(good)) == kept and blobs.quarantined(bad)
    stored = [e for e in stack.app.events.get(d) if type(e).__name__ == "FileRepaired"]
    assert [(e.sha256, e.source, e.actor) for e in stored] == [(good, f"copies {tmp_path / 'backup'}", "sifa fixity")]
    stack.sealer.seal()
    findings = audit(stack.app, stack.log, blobs, stack.signer.verifier, secret=stack.sealer.secret).findings
    assert [(f.kind, f.where) for f in findings] == [("blob_corrupt", f"blob {bad}")]  # sealed, the rest clean


class MeetingCopies(CopiesDir):
    """The backup dir, asked by two sweeps that both found the file rotten: each waits for the other to
    have asked too before it puts the copy back (an operator's ``sifa fixity`` beside the node's own sweep)."""

    def __init__(self, root: Path, meet: threading.Barrier) -> None:
        super().__init__(root)
        self.meet = meet

    def repair(self, sha256: str, blobs: Any, holders: set[str]) -> bool:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.meet.wait(2)
        return super().repair(sha256, blobs, holders)


def test_two_sweeps_at_once_record_one_repair(sqlite_stack: Stack, tmp_path: Path) -> None:
    """Two sweeps at once (the node's and an operator's ``sifa fixity``) find the same rotten file: it is put
    back and its repair recorded once, not once per sweep (the second put changed nothing)."""
    stack = sqlite_stack
    blobs = stack.app.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    d = stack.app.open_dossier(case_number_text="（2026）京0105民初609号", case_type="民事", parties=[], **ACT)
    data = "庭审笔录：双方当事人到庭".encode()
    sha = upload(stack, d, data, "笔录.txt")
    copy_into(tmp_path / "backup", data)
    corrupt(blobs, sha)
    meet = threading.Barrier(2)
    reports: list[Any] = []

    def sweep() -> None:
        reports.append(Fixity(stack.app, blobs, bytes_per_second=0,
                              sources=[MeetingCopies(tmp_path / "backup", meet)]).sweep())  # fmt: skip

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(reports) == 2 and all(r.clean and sha in r.repaired for r in reports)
    assert b"".join(blobs.read(sha)) == data
    stored = [e for e in stack.app.events.get(d) if type(e).__name__ == "FileRepaired"]
    assert [e.sha256 for e in stored] == [sha]


def test_a_sweep_reads_no_faster_than_its_rate(stack: Stack) -> None:
    if "postgres" in str(stack.app.env.get("PERSISTENCE_MODULE", "")):  # type: ignore[attr-defined]
        pytest.skip("the pace is the blob store's, whatever the event store")
    d = stack.app.open_dossier(case_number_text="（2026）京0105民初602号", case_type="民事", parties=[], **ACT)
    for n in range(3):
        upload(stack, d, bytes([n]) * (256 << 10), f"卷{n}.txt")
    blobs = stack.app.blobs
    paced = Fixity(stack.app, blobs, bytes_per_second=1 << 20).sweep()
    assert paced.bytes == 3 * (256 << 10) and paced.seconds >= 0.7  # 768 KiB at 1 MiB/s
    free = Fixity(stack.app, blobs, bytes_per_second=0).sweep()
    assert free.checked == 3 and free.seconds < paced.seconds / 2


def test_an_archived_dossiers_file_is_repaired_from_its_archive_package(tmp_path: Path) -> None:
    data = tmp_path / "node"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    admin = {"Authorization": f"Bearer {out.getvalue().strip()}"}
    settings = Settings(data_dir=data, seal_interval_seconds=0.01, sequencer="thread")
    with TestClient(create_app(settings)) as http:
        staff = {}
        for role in ("clerk", "archivist"):
            r = http.post("/v1/principals", headers=admin, json={"name": role, "role": role})
            staff[role] = {"Authorization": "Bearer " + r.json()["token"]}
        opened = {"case_number": "（2026）京0105民初603号", "case_type": "民事"}
        d = http.post("/v1/dossiers", headers=staff["clerk"], json=opened).json()["dossier"]
        judgment = pdf_bytes(2)
        up = http.post(f"/v1/dossiers/{d}/documents", content=judgment, headers={
            **staff["clerk"], "X-File-Name": quote("判决书.pdf"), "Content-Type": "application/pdf"})  # fmt: skip
        assert up.status_code == 201, up.text
        r = http.post(f"/v1/dossiers/{d}/archive", headers=staff["archivist"], json={"retention": "短期"})
        assert r.status_code == 200, r.text
    sha = up.json()["sha256"]
    blobs = FilesystemBlobStore(data / "blobs")
    corrupt(blobs, sha)

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(["fixity", "--data-dir", str(data), "--json"])
    report = json.loads(out.getvalue())
    assert code == 0, err.getvalue()
    assert report["corrupt"] == [sha] and report["repaired"][sha].startswith("archive package ")
    assert b"".join(blobs.read(sha)) == judgment and not blobs.quarantined(sha)
    assert sifa(["seal", "--once", "--data-dir", str(data)]) == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert sifa(["audit", "--data-dir", str(data), "--json"]) == 0
    assert json.loads(out.getvalue())["findings"] == []
    blobs.close()


@pytest.mark.slow
def test_the_sequencer_sweeps_on_its_schedule_and_quarantines_what_rotted(tmp_path: Path) -> None:
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_FIXITY_INTERVAL_SECONDS="0.5", SIFA_FIXITY_BYTES_PER_SECOND="1000000")
    try:
        token, (d,) = Writer.clerk(node.url, admin, clients=1)
        headers = {"Authorization": f"Bearer {token}", "X-File-Name": quote("笔录.txt"), "Content-Type": "text/plain"}
        r = httpx2.post(f"{node.url}/v1/dossiers/{d}/documents", content="笔录".encode(), timeout=30, headers=headers)
        assert r.status_code == 201, r.text
        sha = r.json()["sha256"]
        blobs = FilesystemBlobStore(data / "blobs")
        corrupt(blobs, sha)
        deadline = time.monotonic() + 30
        while not blobs.quarantined(sha):  # no request reads it: the scheduled sweep finds it
            assert time.monotonic() < deadline, "no sweep found the corrupt file"
            time.sleep(0.1)
        state = json.loads((data / "fixity.json").read_text())
        assert state["report"]["checked"] >= 1
        blobs.close()
    finally:
        node.stop()


# --- collection of blobs no event names ---

OLD = 3 * 86400.0  # seconds: how old the test makes an orphan look


def age(blobs: FilesystemBlobStore, sha: str, seconds: float = OLD) -> None:
    when = time.time() - seconds
    os.utime(blobs.path(sha), (when, when))


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[Stack]:
    from tests.dossier_fixtures import make_stack

    s = make_stack("sqlite", tmp_path)
    yield s
    s.close()


def test_collection_deletes_old_orphans_only(sqlite_stack: Stack) -> None:
    app, blobs = sqlite_stack.app, sqlite_stack.app.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    d = app.open_dossier(case_number_text="（2026）京0105民初610号", case_type="民事", parties=[], **ACT)
    named = upload(sqlite_stack, d, "起诉状".encode(), "起诉状.txt")
    orphan = blobs.put(iter(["导入中断的文件".encode()])).sha256  # an import that failed before its event
    young = blobs.put(iter(["正在上传".encode()])).sha256  # an upload about to record its event
    locked = blobs.put(iter(["归档锁定".encode()])).sha256
    blobs.lock(locked, datetime.now(UTC) + timedelta(days=1))
    for sha in (named, orphan, locked):
        with contextlib.suppress(PermissionError):  # the locked one is immutable (as root): already old enough
            age(blobs, sha)
    report = collect(app, blobs, older_than=86400)
    assert report.collected == [orphan] and report.kept_young == 1 and report.put_back == []
    assert not blobs.exists(orphan) and all(blobs.exists(s) for s in (named, young, locked))
    assert collect(app, blobs, older_than=86400).collected == []


class RacingUpload(FilesystemBlobStore):
    """A blob store in which an upload of the orphan's bytes comes at the worst moment of a collection:
    ``before`` the claim (it finds the blob and touches it), or ``after`` it (the blob is gone)."""

    def __init__(self, root: Path, when: str, upload: Callable[[], object]) -> None:
        super().__init__(root)
        self.when, self.upload = when, upload

    def claim(self, sha256: str) -> float | None:
        if self.when == "before":
            self.upload()
        claimed = super().claim(sha256)
        if self.when == "after":
            self.upload()
        return claimed


def record_upload(stack: Stack, d: Any, sha: str, size: int) -> None:
    """The second half of an upload: its event, recorded after its bytes were put."""
    dossier = stack.app.get(d)
    dossier.upload(document_id="racing", sha256=sha, size=size, pages=None, source="court", name="重新上传.txt",
                   media_type="text/plain", doc_type="", **ACT)  # fmt: skip
    stack.app.save(dossier)


@pytest.mark.parametrize("when", ["before", "after"])
def test_collection_keeps_an_orphan_an_upload_of_the_same_bytes_races(sqlite_stack: Stack, when: str) -> None:
    """An upload puts the orphan's bytes just before the collector claims it (``before``: its event is
    recorded after the collection has looked), or just after (``after``: the blob is gone, so its
    bytes are stored again). Either way its event names bytes that are there."""
    app, blobs = sqlite_stack.app, sqlite_stack.app.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    d = app.open_dossier(case_number_text="（2026）京0105民初611号", case_type="民事", parties=[], **ACT)
    data = "上次导入中断，这次重新上传".encode()
    orphan = blobs.put(iter([data])).sha256
    age(blobs, orphan)
    racing = RacingUpload(blobs.root, when, lambda: blobs.put(iter([data])))
    report = collect(app, racing, older_than=86400)
    record_upload(sqlite_stack, d, orphan, len(data))
    if when == "before":  # the put touched it: the collector, looking again after its claim, puts it back
        assert report.collected == [] and report.put_back == [orphan]
    assert b"".join(blobs.read(orphan)) == data  # after: the put stored the bytes again, the claimed copy went
    assert not list((blobs.root / "collect").iterdir())
    sqlite_stack.sealer.seal()
    assert (
        audit(app, sqlite_stack.log, blobs, sqlite_stack.signer.verifier, secret=sqlite_stack.sealer.secret).findings
        == []
    )


# --- collection on S3 (moto's S3 server, Object Lock) ---

GRACE = 2.0  # seconds: the collections below take what was stored longer ago than this


def s3_blobs(s3_server: MotoServer, bucket: str, renew_after: float = 0.0) -> S3BlobStore:
    return S3BlobStore(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key, secure=False,
                       renew_after=renew_after)  # fmt: skip


def wait_until_old() -> None:
    """Until what was stored now is older than GRACE, as S3 tells it (whole seconds, taken at their end)."""
    time.sleep(GRACE + 1.2)


@pytest.fixture
def s3_stack(tmp_path: Path, s3_server: MotoServer) -> Iterator[Stack]:
    from tests.dossier_fixtures import make_stack

    s = make_stack("sqlite", tmp_path, blobs=s3_blobs(s3_server, f"gc-{uuid.uuid4().hex[:12]}"))
    yield s
    s.close()
    s.app.blobs.close()


class RemovalsSeen(S3BlobStore):
    """An S3 store that notes each version it is asked to delete (the deletes themselves are S3's)."""

    def __init__(self, store: S3BlobStore) -> None:
        super().__init__(store.endpoint, store.bucket, MotoServer.access_key, MotoServer.secret_key, secure=False,
                         renew_after=store.renews_after)  # fmt: skip
        self.removed: list[str] = []
        remove = self.client.remove_object

        def seen(bucket: str, key: str, version_id: str | None = None) -> None:
            self.removed.append(key)
            remove(bucket, key, version_id=version_id)

        self.client.remove_object = seen  # type: ignore[method-assign]


def test_collection_on_s3_deletes_old_orphans_only(s3_stack: Stack, s3_server: MotoServer) -> None:
    app, blobs = s3_stack.app, s3_stack.app.blobs
    assert isinstance(blobs, S3BlobStore)
    d = app.open_dossier(case_number_text="（2026）京0105民初612号", case_type="民事", parties=[], **ACT)
    named = upload(s3_stack, d, "起诉状".encode(), "起诉状.txt")
    orphan = blobs.put(iter(["导入中断的文件".encode()])).sha256  # an import that failed before its event
    locked = blobs.put(iter(["归档锁定".encode()])).sha256
    blobs.lock(locked, datetime.now(UTC) + timedelta(days=1))
    wait_until_old()
    young = blobs.put(iter(["正在上传".encode()])).sha256  # an upload about to record its event
    hourly = s3_blobs(s3_server, blobs.bucket, renew_after=3600)  # a store whose puts renew only after an hour:
    report = collect(app, hourly, older_than=GRACE)  # so nothing is old enough until an hour more has passed
    assert report.collected == [] and report.kept_young == 3
    seen = RemovalsSeen(blobs)
    report = collect(app, seen, older_than=GRACE)
    assert report.collected == [orphan] and report.kept_young == 1 and report.put_back == []
    assert seen.removed == [blobs.key(orphan)]  # the locked one: not even tried
    assert not blobs.exists(orphan) and all(blobs.exists(s) for s in (named, young, locked))
    assert collect(app, seen, older_than=GRACE).collected == [] and seen.removed == [blobs.key(orphan)]
    s3_stack.sealer.seal()
    audited = audit(app, s3_stack.log, blobs, s3_stack.signer.verifier, secret=s3_stack.sealer.secret)
    assert audited.findings == []
    hourly.close()
    seen.close()


class RacingS3(S3BlobStore):
    """An S3 store on which, for each orphan of ``plan``, an upload of its bytes comes at a chosen moment of a
    collection: ``listed`` (after the listing, before the claim), ``claimed`` (after the claim, before the events
    are read again) or ``discarding`` (after that, right before the delete); its event recorded at once, or
    only after the collection (``later``)."""

    def __init__(self, store: S3BlobStore, plan: dict[str, tuple[str, str]], put: Callable[[str], object],
                 record: Callable[[str], None]) -> None:  # fmt: skip
        super().__init__(store.endpoint, store.bucket, MotoServer.access_key, MotoServer.secret_key, secure=False,
                         renew_after=store.renews_after)  # fmt: skip
        self.plan, self.put_bytes, self.record = plan, put, record
        self.later: list[str] = []

    def _race(self, sha: str, moment: str) -> None:
        when, event = self.plan.get(sha, ("", ""))
        if when == moment:
            self.put_bytes(sha)
            if event == "at once":
                self.record(sha)
            else:
                self.later.append(sha)

    def claim(self, sha256: str) -> float | None:
        self._race(sha256, "listed")
        claimed = super().claim(sha256)
        self._race(sha256, "claimed")
        return claimed

    def discard(self, sha256: str) -> None:
        self._race(sha256, "discarding")
        super().discard(sha256)


def record_file(stack: Stack, d: Any, sha: str, size: int) -> None:
    """The second half of an upload: its event, recorded after its bytes were put."""
    dossier = stack.app.get(d)
    dossier.upload(document_id=f"racing-{sha[:8]}", sha256=sha, size=size, pages=None, source="court",
                   name="重新上传.txt", media_type="text/plain", doc_type="", **ACT)  # fmt: skip
    stack.app.save(dossier)


def test_collection_on_s3_keeps_every_orphan_an_upload_of_the_same_bytes_races(s3_stack: Stack) -> None:
    """Each moment a collection can be caught at, each with the upload's event recorded at once or only after
    the collection: every event names bytes that are there."""
    app, blobs = s3_stack.app, s3_stack.app.blobs
    assert isinstance(blobs, S3BlobStore)
    d = app.open_dossier(case_number_text="（2026）京0105民初613号", case_type="民事", parties=[], **ACT)
    cases = [(when, event) for when in ("listed", "claimed", "discarding") for event in ("at once", "later")]
    data = {case: f"上次导入中断，这次重新上传（{case[0]}，{case[1]}）".encode() for case in cases}
    plan = {blobs.put(iter([b])).sha256: case for case, b in data.items()}
    by_sha = {sha: data[case] for sha, case in plan.items()}
    wait_until_old()
    racing = RacingS3(blobs, plan, lambda sha: blobs.put(iter([by_sha[sha]])),
                      lambda sha: record_file(s3_stack, d, sha, len(by_sha[sha])))  # fmt: skip
    report = collect(app, racing, older_than=GRACE)
    for sha in racing.later:
        record_file(s3_stack, d, sha, len(by_sha[sha]))
    assert sorted(racing.later) == sorted(sha for sha, (_, event) in plan.items() if event == "later")
    for sha, b in by_sha.items():
        assert blobs.exists(sha) and b"".join(blobs.read(sha)) == b, plan[sha]
    # Put back: an upload before the claim renewed the time, or its event was there when the collector looked
    # again. Collected: the versions claimed, while the version an upload wrote since stays the blob.
    expect = {sha: "put back" if when == "listed" or (when, event) == ("claimed", "at once") else "collected"
              for sha, (when, event) in plan.items()}  # fmt: skip
    assert sorted(report.put_back) == sorted(sha for sha, what in expect.items() if what == "put back")
    assert sorted(report.collected) == sorted(sha for sha, what in expect.items() if what == "collected")
    s3_stack.sealer.seal()
    audited = audit(app, s3_stack.log, blobs, s3_stack.signer.verifier, secret=s3_stack.sealer.secret)
    assert audited.findings == []
    racing.close()


def test_collection_on_s3_racing_real_uploads_leaves_no_event_naming_a_missing_blob(s3_stack: Stack) -> None:
    """Uploads of orphans' bytes (through the dossier's upload, bytes then event) in one thread, collections in
    another, at once: whatever the interleaving, every file an event names is there, whole."""
    app, blobs = s3_stack.app, s3_stack.app.blobs
    assert isinstance(blobs, S3BlobStore)
    d = app.open_dossier(case_number_text="（2026）京0105民初614号", case_type="民事", parties=[], **ACT)
    files = [f"第{n}份证据：上次导入中断".encode() for n in range(12)]
    for b in files:
        blobs.put(iter([b]))
    wait_until_old()
    done = threading.Event()
    failed: list[BaseException] = []

    def uploads() -> None:
        try:
            for n, b in enumerate(files):
                upload(s3_stack, d, b, f"证据{n}.txt")
        except BaseException as exc:
            failed.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=uploads)
    thread.start()
    collected = 0
    while not done.is_set():
        collected += len(collect(app, blobs, older_than=GRACE).collected)
    thread.join()
    collected += len(collect(app, blobs, older_than=GRACE).collected)
    assert failed == [] and collected <= len(files)  # an old version each, at most (what a claim saw)
    for b in files:
        assert b"".join(blobs.read(hashlib.sha256(b).hexdigest())) == b
    s3_stack.sealer.seal()
    audited = audit(app, s3_stack.log, blobs, s3_stack.signer.verifier, secret=s3_stack.sealer.secret)
    assert audited.findings == [] and audited.blobs == len(files)


def test_an_upload_renewing_a_blob_a_collection_deletes_meanwhile_is_stored(s3_server: MotoServer) -> None:
    """An upload of bytes stored long ago writes them again (a new version, renewing their time), then looks
    at every version's retention; a collection deleting the old version between that listing and its look
    (it claimed it before the upload) leaves the new version, the blob: the upload succeeds (it failed with
    BlobNotFoundError, its bytes stored, the user told nothing was)."""
    blobs = s3_blobs(s3_server, f"race-{uuid.uuid4().hex[:12]}")
    data = "上次导入中断，这次重新上传".encode()
    sha = blobs.put(iter([data])).sha256
    key = blobs.key(sha)
    uploader = s3_blobs(s3_server, blobs.bucket)  # renews whatever it finds stored
    listing = uploader.client.list_objects

    def collected_meanwhile(bucket: str, prefix: str | None = None, **kw: Any) -> Iterator[Any]:
        for obj in listing(bucket, prefix=prefix, **kw):
            if kw.get("include_version") and prefix == key and obj.is_latest != "true" and not obj.is_delete_marker:
                blobs.client.remove_object(bucket, key, version_id=obj.version_id)  # the collector's discard
            yield obj

    uploader.client.list_objects = collected_meanwhile  # type: ignore[method-assign]
    time.sleep(1.1)  # a second later, as S3 tells time: the put writes a new version
    assert uploader.put(iter([data])).sha256 == sha
    assert b"".join(blobs.read(sha)) == data
    uploader.close()
    blobs.close()


def test_sifa_fixity_on_a_node_on_s3_collects(
    tmp_path: Path, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "node"
    init(data)
    bucket = f"gc-cli-{uuid.uuid4().hex[:8]}"
    env = {"SIFA_S3_ENDPOINT": s3_server.endpoint, "SIFA_S3_SECURE": "false", "SIFA_S3_BUCKET": bucket,
           "SIFA_S3_ACCESS_KEY": s3_server.access_key, "SIFA_S3_SECRET_KEY": s3_server.secret_key,
           "SIFA_FIXITY_COLLECT_AFTER_SECONDS": str(GRACE)}  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("storage.s3.RENEW_AFTER", 0.0)  # else an orphan is collected an hour later than GRACE
    blobs = s3_blobs(s3_server, bucket)
    orphan = blobs.put(iter(["导入中断的文件".encode()])).sha256
    wait_until_old()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(["fixity", "--data-dir", str(data), "--json"])
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["collection"] == {"collected": [orphan], "kept_young": 0, "put_back": []}
    assert "1 file(s) no event names collected" in err.getvalue() and not blobs.exists(orphan)
    blobs.close()
