"""The 副卷 is for the court only: every role x volume x surface, over real HTTP.

Court practice: 阅卷 covers the 正卷 only; 审理报告, 合议庭评议笔录 and 审判委员会讨论记录 are never shown to
parties or their lawyers. For them a 副卷 document is absent (404, as for a document that does not
exist) on every surface; their own uploads go to the 正卷, whatever they declare.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from dossier.errors import InvalidDossierInputError
from dossier.package import plan_package
from evidence.package import BAGIT, EVENTS, INFO, MANIFEST, TAGMANIFEST, PackageError, read_package_bytes
from tests.dossier_fixtures import Stack, pdf_bytes
from tests.nodes import Node
from verifier.cli import main as sifa_verify

ACT = {"actor": "clerk:li", "role": "clerk"}
STAFF = ("clerk", "judge", "archivist")
READERS = (*STAFF, "lawyer", "party")
SURFACES = ("read documents", "read catalogue", "events", "download", "receipt", "tlog-proof", "package file",
            "package catalogue", "package events")  # fmt: skip


@dataclass
class Doc:
    volume: str
    document_id: str
    sha256: str
    title: str
    versions: tuple[int, ...]  # the events that name it


@pytest.fixture(scope="module")
def dossier(node: Node) -> tuple[str, list[Doc]]:
    clerk = node.as_("clerk")
    r = node.http.post("/v1/dossiers", headers=clerk, json={"case_number": "（2026）京0105民初4242号",
                                                             "case_type": "民事"})  # fmt: skip
    d = r.json()["dossier"]
    for who in ("lawyer", "party"):
        assert node.http.post(f"/v1/principals/{node.ids[who]}/admissions", json={"dossier": d},
                              headers=clerk).status_code == 204  # fmt: skip
    docs = []
    for pages, name, declared, volume in ((1, "民事起诉状", None, "正卷"), (2, "评议", "合议庭评议笔录", "副卷"),
                                          (3, "庭审笔录", None, "正卷")):  # fmt: skip
        extra = {"X-Doc-Type": quote(declared)} if declared else {}
        up = _upload(node, d, "clerk", pdf_bytes(pages), f"{name}.pdf", **extra)
        docs.append(Doc(volume, up["document_id"], up["sha256"], name, (up["version"] - 1, up["version"])))
    # The third is moved into the 副卷 by the clerk's manual catalogue: it becomes invisible too.
    moved = docs[2]
    r = node.http.post(f"/v1/dossiers/{d}/catalogue", headers=clerk, json={
        "document_id": moved.document_id, "volume": "副卷", "category": "审理报告", "order": 5, "title": "庭审笔录",
        "pages": 3})  # fmt: skip
    assert r.status_code == 200, r.text
    docs[2] = Doc("副卷", moved.document_id, moved.sha256, moved.title, (*moved.versions, r.json()["version"]))
    return d, docs


def _upload(node: Node, d: str, role: str, data: bytes, name: str, **headers: str) -> dict[str, object]:
    h = {**node.as_(role), "X-File-Name": quote(name), "Content-Type": "application/pdf", **headers}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=data, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


def _seen(node: Node, d: str, role: str, doc: Doc, tmp_path: Path) -> dict[str, bool]:
    """What ``role`` sees of ``doc``, surface by surface."""
    h = node.as_(role)
    view = node.http.get(f"/v1/dossiers/{d}", headers=h).json()
    events = {e["version"] for e in node.http.get(f"/v1/dossiers/{d}/events", headers=h).json()}
    download = node.http.get(f"/v1/dossiers/{d}/files/{doc.sha256}", headers=h)
    assert download.status_code in (200, 404), download.text
    receipts = [node.http.get(f"/v1/dossiers/{d}/receipts/{v}", headers=h) for v in doc.versions]
    proofs = [node.http.get(f"/v1/dossiers/{d}/receipts/{v}/tlog-proof", headers=h) for v in doc.versions]
    for r in (*receipts, *proofs):
        assert r.status_code in (200, 404), r.text
        if r.status_code == 404:
            assert r.json()["code"] == "tree_size"  # as for an event that does not exist
    package = node.http.get(f"/v1/dossiers/{d}/package", headers=h)
    assert package.status_code == 200, package.text
    with tarfile.open(fileobj=io.BytesIO(package.content)) as tar:
        names = tar.getnames()
        catalogue = tar.extractfile("sifa/catalogue.html").read().decode()  # type: ignore[union-attr]
        leaves = tar.extractfile(EVENTS).read().decode()  # type: ignore[union-attr]
    # Every copy verifies whole with the lawyer's verifier, a withheld 副卷 and all.
    (tmp_path / "p.tar").write_bytes(package.content)
    key = node.http.get("/v1/log/key").json()
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"origin": key["origin"], "key": key["verifier_key"]}]}))
    assert sifa_verify(["--dossier", str(tmp_path / "p.tar"), "--trust", str(tmp_path / "t.json")]) == 0
    return {
        "read documents": doc.document_id in view["documents"],
        "read catalogue": doc.document_id in {e["document_id"] for e in view["catalogue"]},
        "events": set(doc.versions) <= events,
        "download": download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == doc.sha256,
        "receipt": all(r.status_code == 200 for r in receipts),
        "tlog-proof": all(r.status_code == 200 for r in proofs),
        "package file": f"data/{doc.sha256}" in names,
        "package catalogue": doc.sha256 in catalogue,
        "package events": doc.sha256 in leaves,  # its upload's leaf names it
    }


@pytest.mark.parametrize("role", READERS)
def test_each_role_sees_each_volume_on_each_surface_as_the_court_rules(
    node: Node, dossier: tuple[str, list[Doc]], role: str, tmp_path: Path
) -> None:
    d, docs = dossier
    for doc in docs:
        expected = role in STAFF or doc.volume == "正卷"
        seen = _seen(node, d, role, doc, tmp_path)
        assert set(seen) == set(SURFACES)
        wrong = {s: v for s, v in seen.items() if v != expected}
        assert not wrong, (role, doc.volume, doc.title, wrong)
    package = node.http.get(f"/v1/dossiers/{d}/package", headers=node.as_(role))
    with tarfile.open(fileobj=io.BytesIO(package.content)) as tar:  # the lawyer's copy withholds events, no file list
        leaves = [json.loads(line) for line in tar.extractfile(EVENTS).read().splitlines()]  # type: ignore[union-attr]
        assert "sifa/withheld.txt" not in tar.getnames()
    assert any("leaf" not in e for e in leaves) == (role not in STAFF)
    inspection = node.http.get(f"/v1/dossiers/{d}/inspection", headers=node.as_(role))
    assert inspection.status_code == (200 if role in STAFF else 403), inspection.text


@pytest.mark.parametrize("role", ("lawyer", "party"))
def test_nothing_a_lawyer_or_party_gets_names_a_court_only_file(
    node: Node, dossier: tuple[str, list[Doc]], role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d, docs = dossier
    secrets = [doc for doc in docs if doc.volume == "副卷"]
    for doc in secrets:  # the court reads them: each download is recorded, as a court-only event
        assert node.http.get(f"/v1/dossiers/{d}/files/{doc.sha256}", headers=node.as_("judge")).status_code == 200
    h = node.as_(role)
    seen = node.http.get(f"/v1/dossiers/{d}/events", headers=h).json()
    answers = [node.http.get(f"/v1/dossiers/{d}/receipts/{e['version']}", headers=h) for e in seen]
    package = node.http.get(f"/v1/dossiers/{d}/package", headers=h).content
    for doc in secrets:
        for r in answers:
            assert r.status_code == 200 and doc.sha256 not in r.text, r.text
        assert doc.sha256.encode() not in package
    # Its withheld events answer exactly as events that do not exist (the version aside).
    last = node.http.get(f"/v1/dossiers/{d}", headers=node.as_("clerk")).json()["version"]
    for hidden in secrets[0].versions:
        for tail in ("", "/tlog-proof"):
            a = node.http.get(f"/v1/dossiers/{d}/receipts/{hidden}{tail}", headers=h)
            b = node.http.get(f"/v1/dossiers/{d}/receipts/{last + 1000}{tail}", headers=h)
            assert a.status_code == b.status_code == 404
            assert a.json() == json.loads(b.text.replace(str(last + 1000), str(hidden)))
    # sifa-verify says how many events the copy withholds, not what they were.
    (tmp_path / "p.tar").write_bytes(package)
    key = node.http.get("/v1/log/key").json()
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"origin": key["origin"], "key": key["verifier_key"]}]}))
    capsys.readouterr()
    assert sifa_verify(["--dossier", str(tmp_path / "p.tar"), "--trust", str(tmp_path / "t.json"), "--json"]) == 0
    out, err = capsys.readouterr()
    withheld = json.loads(out)["withheld_events"]
    assert withheld >= 5 and f"{withheld} events withheld" in err


@pytest.mark.parametrize("role", ("lawyer", "party"))
def test_a_lawyers_or_partys_upload_goes_to_the_main_volume_whatever_it_declares(
    node: Node, dossier: tuple[str, list[Doc]], role: str
) -> None:
    d, _ = dossier
    for name, declared in (("评议.pdf", "合议庭评议笔录"), ("审理报告.pdf", None), ("讨论.pdf", "审判委员会讨论记录")):
        extra = {"X-Doc-Type": quote(declared)} if declared else {}
        up = _upload(node, d, role, pdf_bytes(1) + (role + name).encode(), name, **extra)  # one file per upload
        view = node.http.get(f"/v1/dossiers/{d}", headers=node.as_("clerk")).json()
        [entry] = [e for e in view["catalogue"] if e["document_id"] == up["document_id"]]
        assert entry["volume"] == "正卷", (name, declared, entry)
        mine = node.http.get(f"/v1/dossiers/{d}", headers=node.as_(role)).json()
        assert up["document_id"] in mine["documents"]  # and they still see what they sent
    r = node.http.post(f"/v1/dossiers/{d}/catalogue", headers=node.as_(role), json={
        "document_id": up["document_id"], "volume": "副卷", "category": "x", "order": 1, "title": "x"})  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


def test_a_withdrawn_court_only_document_stays_hidden(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初4243号", case_type="民事", parties=[], **ACT)
    up = app.upload(d, iter([b"report"]), name="审理报告.txt", media_type="text/plain", source="court", doc_type=None,
                    **ACT)  # fmt: skip
    app.withdraw(d, document_id=up["document_id"], reason="重新制作", **ACT)
    dossier = app.get(d)
    assert up["document_id"] not in dossier.catalogue
    assert dossier.hidden_from("lawyer") == dossier.hidden_from("party") == {up["document_id"]}
    assert dossier.hidden_from("judge") == set()
    assert dossier.hidden_files({up["document_id"]}) == {up["sha256"]}


def test_the_library_refuses_a_lawyer_placing_a_document_in_the_court_only_volume(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初4244号", case_type="民事", parties=[], **ACT)
    up = app.upload(d, iter([b"x"]), name="合议庭评议笔录.txt", media_type="text/plain", source="lawyer",
                    doc_type="合议庭评议笔录", actor="lawyer:1", role="lawyer")  # fmt: skip
    assert app.get(d).catalogue[up["document_id"]]["volume"] == "正卷"
    with pytest.raises(InvalidDossierInputError):
        app.catalogue(d, document_id=up["document_id"], volume="副卷", category="审理报告", order=1, title="x",
                      pages=None, actor="lawyer:1", role="lawyer")  # fmt: skip


# --- a lawyer's package: the 副卷's files withheld, and said so ---


def _court_only_package(stack: Stack) -> tuple[bytes, bytes, str, str]:
    """A lawyer's copy and the court's, of a dossier with one file in each volume."""
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初4245号", case_type="民事", parties=[], **ACT)
    main = app.upload(d, iter([pdf_bytes(1)]), name="起诉状.pdf", media_type="application/pdf", source="court",
                      doc_type=None, **ACT)  # fmt: skip
    secret = app.upload(d, iter([pdf_bytes(2)]), name="评议.pdf", media_type="application/pdf", source="court",
                        doc_type="合议庭评议笔录", **ACT)  # fmt: skip
    stack.sealer.seal()
    copies = [b"".join(plan_package(stack.sealer, d, court_name="法院", purpose="调阅", personal=court,
                                    court=court).stream(app.blobs)) for court in (False, True)]  # fmt: skip
    return copies[0], copies[1], str(main["sha256"]), str(secret["sha256"])


def test_a_lawyers_package_withholds_the_court_only_events_and_still_verifies(stack: Stack) -> None:
    lawyers, courts, main, secret = _court_only_package(stack)
    keys = [stack.signer.verifier]
    package = read_package_bytes(lawyers, keys, withheld=True)
    assert set(package.files) == {main} and package.withheld == [4, 5]  # the 评议's upload and cataloguing
    assert "withheld" in dict(package.checks)
    # Nothing of the 副卷 document is in the lawyer's copy: not its hash, its name, its title or its volume.
    for secret_text in (secret, "评议", "副卷", "合议庭评议笔录"):
        assert secret_text.encode() not in lawyers, secret_text
    whole = read_package_bytes(courts, keys)
    assert set(whole.files) == {main, secret} and not whole.withheld
    assert [e.version for e in whole.events] == [1, 2, 3, 4, 5]
    with pytest.raises(PackageError, match="withholds event 4"):  # an import takes only a whole package
        read_package_bytes(lawyers, keys)


def test_a_withheld_event_is_still_proved_and_chained(stack: Stack) -> None:
    lawyers, _, _, _ = _court_only_package(stack)
    keys = [stack.signer.verifier]
    members = _members(lawyers)
    lines = members[EVENTS].splitlines(keepends=True)
    withheld = json.loads(lines[3])
    assert set(withheld) == {"version", "leaf_index", "leaf_hash", "proof"}
    forged_hash = {**withheld, "leaf_hash": "0" * 64}
    shown = json.loads(lines[2])  # event 3 moved into event 4's place: its proof holds, the chain does not
    moved = {**shown, "version": 4}
    for what, forged in (("another leaf hash", [*lines[:3], _line(forged_hash), *lines[4:]]),
                         ("a withheld event dropped", [*lines[:3], *lines[4:]]),
                         ("the opening withheld", [_line({**json.loads(lines[0]), "leaf": None}), *lines[1:]]),
                         ("an event in its place", [*lines[:3], _line(moved), *lines[4:]])):  # fmt: skip
        with pytest.raises(PackageError):
            read_package_bytes(_tar({**members, EVENTS: b"".join(forged)}), keys, withheld=True)
            pytest.fail(what)
    opening = json.loads(lines[0])
    as_withheld = {k: v for k, v in opening.items() if k != "leaf"}
    as_withheld["leaf_hash"] = hashlib.sha256(b"\x00" + opening["leaf"].encode()).hexdigest()
    with pytest.raises(PackageError, match="opening"):
        read_package_bytes(_tar({**members, EVENTS: b"".join([_line(as_withheld), *lines[1:]])}), keys, withheld=True)


def _line(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers()}  # type: ignore[union-attr]


def _tar(members: dict[str, bytes]) -> bytes:
    """A package of these members, tag files first, its tag manifest recomputed (as a careful forger would)."""
    tags = {n: d for n, d in members.items() if not n.startswith("data/") and n != TAGMANIFEST}
    head = [BAGIT, INFO, MANIFEST]
    manifest = "".join(f"{hashlib.sha256(d).hexdigest()} {n}\n" for n, d in tags.items()).encode()
    order = [*head, TAGMANIFEST, *(n for n in tags if n not in head), *(n for n in members if n.startswith("data/"))]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in order:
            data = manifest if name == TAGMANIFEST else members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()
