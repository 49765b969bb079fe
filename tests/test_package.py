"""Dossier packages: written by one court, verified byte by byte and imported by another.

Tampered packages (a byte in a file, an event removed, proofs swapped, a forged disclosure,
a checkpoint by an unknown key) are refused with the reason, and nothing of them is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dossier.application import Pending
from dossier.domain import Dossier
from dossier.errors import DossierExistsError, DossierNotFoundError, DossierReceivedError
from dossier.package import plan_package
from dossier.transfer import NotTransferredError, _Stores, import_package
from evidence.package import EVENTS, MANIFEST, TAGMANIFEST, PackageError, read_package_bytes
from ledger.note import Ed25519Signer
from storage.blobstore import BlobInfo
from storage.filesystem import FilesystemBlobStore
from tests.conftest import PostgresCluster
from tests.dossier_fixtures import Stack, make_stack
from tests.package_fixtures import ACT, CASE, HIGHER
from tests.package_fixtures import event_lines as _events
from tests.package_fixtures import package_bytes as _package
from tests.package_fixtures import rebuild as _rebuild
from tests.package_fixtures import sample_dossier as _dossier
from tests.package_fixtures import tar_members as _members
from tests.package_fixtures import with_events as _with_events


@pytest.fixture(params=["sqlite", "postgres"])
def courts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Stack, Stack]]:
    """A basic court's stack and its intermediate court's, on each event store."""
    specs = []
    for who in ("low", "high"):
        if request.param == "sqlite":
            specs.append("sqlite")
        else:
            cluster: PostgresCluster = request.getfixturevalue("postgres")
            name = f"p{who}{abs(hash(tmp_path)) % 10**8}"
            cluster.create_database(name)
            specs.append(f"postgres:127.0.0.1:{cluster.port}:{name}")
    low = make_stack(specs[0], tmp_path / "low")
    high = make_stack(specs[1], tmp_path / "high", court=HIGHER, seed=bytes(range(1, 33)))
    yield low, high
    low.close()
    high.close()


def test_package_round_trip_and_import(courts: tuple[Stack, Stack]) -> None:
    low, high = courts
    d = _dossier(low)
    data = _package(low, d)
    names = [m.name for m, _ in _members(data)]
    assert names[:4] == ["bagit.txt", "bag-info.txt", MANIFEST, TAGMANIFEST]
    assert sum(n.startswith("data/") for n in names) == 5
    package = read_package_bytes(data, [low.signer.verifier])
    assert [c for c, _ in package.checks] == ["bag", "checkpoint", "events", "files", "disclosures"]
    assert package.info["External-Identifier"] == CASE
    imported = import_package(high.app, io.BytesIO(data), logs=[low.signer.verifier], actor="clerk:2")
    assert (imported.events, imported.files) == (len(package.events), 5)
    got = high.app.get(d)
    assert (got.court, got.case_number, got.received["from_origin"]) == ("1101-0105", CASE, "sifa.court/1101-0105")
    assert [p["name"] for p in got.parties] == ["张三", "北京某某科技有限公司"]  # disclosed, and verified
    assert sorted(doc["name"] for doc in got.documents.values())[0] == "判决书.txt"
    assert {c["category"] for c in got.catalogue.values()} == {"证据材料", "判决书"}
    for doc in got.documents.values():
        assert high.app.blobs.verify(doc["sha256"]).size == doc["size"]
    # The received dossier's leaves commit to the same parties under the receiving court's own secret:
    # nothing in clear, and the same case is not linkable across the two logs (docs/privacy.md).
    high.sealer.seal()
    first, sent = json.loads(high.log.entry(0)), json.loads(package.events[0].leaf)
    assert "张三".encode() not in high.log.entry(0) and CASE.encode() not in high.log.entry(0)
    assert set(first["commitments"]) == set(sent["commitments"]) and first["dossier"] != sent["dossier"]
    assert not set(first["commitments"].values()) & set(sent["commitments"].values())
    # A copy is not changed here; importing it again is refused.
    refused = b"a file for a copy"
    with pytest.raises(DossierReceivedError):
        high.app.upload(d, io.BytesIO(refused), name="x.txt", media_type="text/plain", source="court", doc_type=None,
                        **ACT)  # fmt: skip
    assert not high.app.blobs.exists(hashlib.sha256(refused).hexdigest())  # refused before its bytes were stored
    with pytest.raises(DossierExistsError):
        import_package(high.app, io.BytesIO(data), logs=[low.signer.verifier], actor="clerk:2")


def _refused(high: Stack, low: Stack, d: str, data: bytes, reason: str) -> None:
    with pytest.raises(PackageError) as caught:
        import_package(high.app, io.BytesIO(data), logs=[low.signer.verifier], actor="clerk:2")
    assert reason in caught.value.diagnostics(), caught.value.diagnostics()
    with pytest.raises(DossierNotFoundError):
        high.app.get(d)
    assert high.app.recorder.max_notification_id() in (None, 0)  # nothing recorded


def test_tampered_packages_import_nothing(courts: tuple[Stack, Stack]) -> None:
    low, high = courts
    d = _dossier(low)
    members = _members(_package(low, d))

    # One byte in one file: that file is refused by its name, and never stored.
    i = next(n for n, (m, _) in enumerate(members) if m.name.startswith("data/"))
    sha = members[i][0].name.removeprefix("data/")
    flipped = bytearray(members[i][1])
    flipped[len(flipped) // 2] ^= 0x01
    bad = [*members[:i], (members[i][0], bytes(flipped)), *members[i + 1 :]]
    _refused(high, low, d, _rebuild(bad), "does not hash to its name")
    assert not high.app.blobs.exists(sha)

    # One event removed (tag manifest recomputed): the versions and the prev chain break.
    lines = _events(members)
    _refused(high, low, d, _with_events(members, lines[:3] + lines[4:]), "event version 4 is missing")
    # ... and the last one removed, with bag-info left: the count disagrees.
    _refused(high, low, d, _with_events(members, lines[:-1]), "events; the package holds")

    # Two events' proofs swapped: neither is proved any more.
    docs = [json.loads(line) for line in lines]
    docs[2]["proof"], docs[3]["proof"] = docs[3]["proof"], docs[2]["proof"]
    swapped = [(json.dumps(doc, ensure_ascii=False) + "\n").encode() for doc in docs]
    _refused(high, low, d, _with_events(members, swapped), "is not proved in the checkpoint")

    # A leaf rewritten (its event type changed) keeps its proof: the proof no longer leads to the root.
    docs = [json.loads(line) for line in lines]
    docs[1]["leaf"] = docs[1]["leaf"].replace('"type":"', '"type":"X', 1)
    changed = [(json.dumps(doc, ensure_ascii=False) + "\n").encode() for doc in docs]
    _refused(high, low, d, _with_events(members, changed), "is not proved in the checkpoint")

    # The tag manifest left as it was: the changed tag file is named.
    _refused(high, low, d, _rebuild([(m, b"".join(lines[:-1]) if m.name == EVENTS else x) for m, x in members],
                                    fix_tags=False), "does not match the tag manifest")  # fmt: skip

    # A forged disclosure: another name for the plaintiff does not open the commitment.
    forged = [(m, x.replace("张三".encode(), "王五".encode()) if m.name == "sifa/disclosures.json" else x)
              for m, x in members]  # fmt: skip
    _refused(high, low, d, _rebuild(forged), "does not open its commitment")

    # A file dropped from the payload (manifest kept): named as missing.
    _refused(high, low, d, _rebuild(members[:i] + members[i + 1 :]), "missing")

    # Cut short in the middle of a file.
    whole = _rebuild(members)
    _refused(high, low, d, whole.rstrip(b"\0")[:-20], "cut")  # inside the last file, whatever the padding

    # Signed by a key the receiving court does not trust.
    with pytest.raises(PackageError, match="checkpoint does not verify"):
        import_package(high.app, io.BytesIO(whole), logs=[Ed25519Signer.generate(low.signer.name).verifier],
                       actor="clerk:2")  # fmt: skip


def test_a_dossier_not_transferred_to_the_court_is_not_imported(courts: tuple[Stack, Stack]) -> None:
    low, high = courts
    d = _dossier(low, transfer=False)
    with pytest.raises(NotTransferredError):
        import_package(high.app, io.BytesIO(_package(low, d)), logs=[low.signer.verifier], actor="clerk:2")
    with pytest.raises(DossierNotFoundError):
        high.app.get(d)


def test_package_streams_large_files_in_chunks(courts: tuple[Stack, Stack], tmp_path: Path) -> None:
    """A 40 MB file: the package stream hands it on in chunks, never as one piece."""
    low, high = courts
    d = _dossier(low, files=1)
    big = os.urandom(40 << 20)
    low.app.upload(d, io.BytesIO(big), name="庭审录像.mp4", media_type="video/mp4", source="court", doc_type=None,
                   **ACT)  # fmt: skip
    low.app.transfer(d, to_court=HIGHER, kind="移送", reason="移送管辖", **ACT)
    low.sealer.seal()
    plan = plan_package(low.sealer, d, court_name="北京市朝阳区人民法院", purpose="移送")
    largest = 0
    path = tmp_path / "p.tar"
    with path.open("wb") as f:
        for chunk in plan.stream(low.app.blobs):
            largest = max(largest, len(chunk))
            f.write(chunk)
    assert largest <= 4 << 20
    with path.open("rb") as f:
        imported = import_package(high.app, f, logs=[low.signer.verifier], actor="clerk:2")
    assert imported.bytes >= len(big)
    assert high.app.blobs.verify(hashlib.sha256(big).hexdigest()).size == len(big)


def test_the_bag_is_valid_bagit_and_survives_gnu_tar(tmp_path: Path) -> None:
    """Others' tools agree: bagit-python (the Library of Congress reference) validates the bag, and
    repacked by GNU tar, in ustar, pax or gnu format, it still imports."""
    import subprocess

    import bagit

    low = make_stack("sqlite", tmp_path / "low")
    try:
        d = _dossier(low)
        data = _package(low, d)
        folder = tmp_path / "bag"
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            order = [m.name for m in t.getmembers()]
            t.extractall(folder, filter="data")
        bag = bagit.Bag(str(folder))
        bag.validate()
        assert bag.info["External-Identifier"] == CASE and bag.info["Payload-Oxum"].endswith(".5")
        for fmt in ("ustar", "pax", "gnu"):
            out = tmp_path / f"{fmt}.tar"
            subprocess.run(["tar", f"--format={fmt}", "-cf", str(out), "-C", str(folder), "--no-recursion", *order],
                           check=True)  # fmt: skip
            high = make_stack("sqlite", tmp_path / f"high-{fmt}", court=HIGHER, seed=bytes(range(1, 33)))
            try:
                with out.open("rb") as f:
                    assert import_package(high.app, f, logs=[low.signer.verifier], actor="clerk:2").files == 5
            finally:
                high.close()
        victim = next(p for p in (folder / "data").iterdir())
        victim.chmod(0o644)
        victim.write_bytes(victim.read_bytes() + b"!")
        with pytest.raises(bagit.BagValidationError):
            bagit.Bag(str(folder)).validate()
    finally:
        low.close()


# --- a package whose proved leaves hold values this node's own commands refuse ---


def _bad_leaf(low: Stack, d: str, record: Callable[[Dossier], None]) -> None:
    """Record an event past the library's checks (as another court's node might have), then transfer and seal."""
    low.app.enqueue(Pending(d, record)).result()
    low.app.transfer(d, to_court=HIGHER, kind="上诉", reason="被告不服一审判决", **ACT)
    low.sealer.seal()


X = hashlib.sha256(b"x").hexdigest()


def _forged_upload(**change: Any) -> Callable[[Dossier, str], None]:
    """An upload event written past the command's checks: a sound one with ``change``."""
    fields = {"document_id": "e" * 32, "sha256": X, "size": 1, "name": "x.txt", "media_type": "text/plain",
              "source": "court", "doc_type": "", "pages": None, **ACT, **change}  # fmt: skip
    return lambda d, doc: d._upload(**fields)


BAD_LEAVES: dict[str, Callable[[Dossier, str], None]] = {
    "file name with a bidi override": _forged_upload(name="evil\u202egpj.exe"),
    "file name not NFC": _forged_upload(name="e\u0301.txt"),
    "doc type with a NUL": _forged_upload(doc_type="判决书\x00"),
    "unknown source": _forged_upload(source="someone"),
    "catalogue pages a boolean": lambda d, doc: d._catalogued(
        document_id=doc, volume="正卷", category="x", order=1, title="x", pages=True, auto=False, **ACT
    ),
    "catalogue at a negative order": lambda d, doc: d._catalogued(
        document_id=doc, volume="正卷", category="x", order=-1, title="x", pages=None, auto=False, **ACT
    ),
    "catalogue title with a NUL": lambda d, doc: d._catalogued(
        document_id=doc, volume="正卷", category="x", order=1, title="x\x00", pages=None, auto=False, **ACT
    ),
}


@pytest.mark.parametrize("case", list(BAD_LEAVES))
def test_an_imported_value_follows_this_nodes_rules(case: str, tmp_path: Path) -> None:
    low = make_stack("sqlite", tmp_path / "low")
    high = make_stack("sqlite", tmp_path / "high", court=HIGHER, seed=bytes(range(1, 33)))
    try:
        d = _dossier(low, transfer=False, files=1)
        low.app.blobs.put(iter([b"x"]))
        doc = next(iter(low.app.get(d).documents))
        _bad_leaf(low, d, lambda dossier: BAD_LEAVES[case](dossier, doc))
        _refused(high, low, d, _package(low, d), "does not record")
    finally:
        low.close()
        high.close()


@pytest.mark.parametrize("name", ["张\u202e三", "张三\x00", "e\u0301", " "])
def test_imported_parties_follow_this_nodes_rules(name: str, tmp_path: Path) -> None:
    low = make_stack("sqlite", tmp_path / "low")
    high = make_stack("sqlite", tmp_path / "high", court=HIGHER, seed=bytes(range(1, 33)))
    try:  # a dossier opened past the library's checks (as another court's node might have)
        bad = {"role": "原告", "kind": "natural", "name": name, "salts": {"name": "00" * 32}}
        opened = Dossier(court=low.app.court, case_number=CASE, case_type="民事", parties=[bad], **ACT)
        low.app._save(opened)
        d = str(opened.id)
        low.app.transfer(d, to_court=HIGHER, kind="上诉", reason="上诉", **ACT)
        low.sealer.seal()
        data = _package(low, d)
        read_package_bytes(data, [low.signer.verifier])  # it verifies: the values are what that court signed
        _refused(high, low, d, data, "party name")
    finally:
        low.close()
        high.close()


class _LateStore(FilesystemBlobStore):
    """The filesystem store, with one file's store held back until the importer is busy judging the
    others (the first time it reads a stored file's name), and let finish then: the interleaving
    that, under load, once imported a tampered package (issue 16 item 5)."""

    def __init__(self, root: Path, late: str) -> None:
        super().__init__(root)
        self.late, self.go, self.finished = late, threading.Event(), threading.Event()

    def put(self, source: Iterator[bytes], expected_sha256: str | None = None) -> BlobInfo:
        if expected_sha256 != self.late:
            info = super().put(source, expected_sha256)
            return _Announcing(info.sha256, info.size, info.locked_until, store=self)
        assert self.go.wait(60)
        try:
            return super().put(source, expected_sha256)
        finally:
            self.finished.set()


class _Announcing(BlobInfo):
    def __init__(self, *args: object, store: _LateStore) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        object.__setattr__(self, "_store", store)

    def __getattribute__(self, name: str) -> object:
        store: _LateStore = object.__getattribute__(self, "_store")
        if name == "sha256" and not store.go.is_set():
            store.go.set()
            assert store.finished.wait(60)
            time.sleep(0.2)  # the worker marks the held-back store's future done
        return object.__getattribute__(self, name)


def test_every_stored_file_is_judged_even_when_its_store_finishes_late(tmp_path: Path) -> None:
    """A file whose store finished while the importer was checking the others was once dropped
    unchecked: a package with one changed file was imported (201). Now each is checked."""
    files = [f"证据 {i}\n".encode() * 20 for i in range(80)]
    bad = hashlib.sha256(files[3]).hexdigest()
    store = _LateStore(tmp_path / "blobs", bad)
    changed = files[3][:-1] + b"!"
    with pytest.raises(PackageError, match=f"data/{bad} does not hash to its name"), _Stores(store) as sink:
        for i, data in enumerate(files):
            sha = hashlib.sha256(data).hexdigest()
            if i == 64:  # every store but the held-back one has finished: the importer can judge them
                deadline = time.monotonic() + 60
                while not all(store.exists(hashlib.sha256(f).hexdigest()) for f in files[:64] if f != files[3]):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                time.sleep(0.2)
            sink(sha, iter([changed if i == 3 else data]))
        sink.finish()
    assert store.finished.is_set() and not store.exists(bad)


def test_a_dossier_with_service_and_execution_events_packages_and_transfers(
    courts: tuple[Stack, Stack], tmp_path: Path
) -> None:
    """送达 and 执行 events are private: their leaves hold document_id as a commitment (a dict). The
    package of such a dossier — the court's copy, a lawyer's copy that withholds the 副卷, an 归档 —
    once failed with TypeError (a 500 over HTTP); now it is written, verifies whole with sifa-verify,
    and the higher court imports it."""
    from dossier import execution, service
    from verifier.cli import main as sifa_verify

    low, high = courts
    app = low.app
    d = _dossier(low, transfer=False, files=1)
    doc = app.upload(d, io.BytesIO("民事判决书 送达".encode()), name="判决书送达本.txt", media_type="text/plain",
                     source="court", doc_type=None, **ACT)  # fmt: skip
    back = app.upload(d, io.BytesIO("送达回执".encode()), name="送达回执.txt", media_type="text/plain",
                      source="court", doc_type=None, **ACT)  # fmt: skip
    # A 副卷 document: withheld from a lawyer's copy.
    app.upload(d, io.BytesIO("合议庭评议笔录".encode()), name="评议.txt", media_type="text/plain", source="court",
               doc_type="合议庭评议笔录", **ACT)  # fmt: skip
    app.enqueue(service.record(app, d, document_id=doc["document_id"], channel="电子邮件",
                               sent_at="2026-11-23T09:00:00Z", party=0, receipt_document_id=back["document_id"],
                               **ACT)).result()  # fmt: skip
    app.enqueue(execution.close(d, method="判决", date="2026-11-30", actor="j", role="judge")).result()
    app.transfer(d, to_court=HIGHER, kind="上诉", reason="被告不服一审判决", **ACT)
    low.sealer.seal()
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [{"key": low.signer.verifier.vkey()}]}))
    for court in (True, False):
        plan = plan_package(low.sealer, d, court_name="北京市朝阳区人民法院", purpose="上诉", court=court,
                            personal=court)  # fmt: skip
        data = b"".join(plan.stream(app.blobs))
        package = read_package_bytes(data, [low.signer.verifier], withheld=not court)
        types = [json.loads(e.leaf)["type"] for e in package.events if e.leaf is not None]
        assert "Served" in types and "CaseClosed" in types
        path = tmp_path / f"package-{court}.tar"
        path.write_bytes(data)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert sifa_verify(["--dossier", str(path), "--trust", str(trust)]) == 0
    imported = import_package(high.app, io.BytesIO(path.with_name("package-True.tar").read_bytes()),
                              logs=[low.signer.verifier], actor="clerk:2")  # fmt: skip
    assert imported.events == low.app.get(d).version
    assert high.app.get(d).case_number == CASE
