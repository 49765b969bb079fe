"""Appeal retrieval between courts, each court its own ``sifa serve`` process on 127.0.0.1.

基层 (1101-0105) → 中级 (1101-0200) → 高级 (1100-0000). A dossier of 200 files (two of them
over 50 MB) goes up on appeal: retrieval before the transfer, by a court the transfer does not
name, and with unsigned, expired, forged, replayed or misaddressed requests is refused; tampered packages
import nothing; the named court retrieves, verifies and imports it; the retrieval is an event
in the lower court's log; and the received copy goes one level further with ``sifa retrieve``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.peers import sign_request
from evidence.package import read_package_bytes
from ledger.note import Ed25519Signer, Ed25519Verifier
from storage.filesystem import FilesystemBlobStore
from tests.nodes import COURTS, HIGH, LOW, MID, ROOT, Serve, clerks_at, start_peer_nodes
from tests.package_fixtures import event_lines as _events
from tests.package_fixtures import rebuild as _rebuild
from tests.package_fixtures import tar_members as _members
from tests.package_fixtures import with_events as _with_events

CASE = "（2026）京0105民初5001号"
BIG = 51 << 20
FILES = 200


@dataclass
class Court:
    code: str
    data: Path
    serve: Serve
    http: httpx2.Client
    clerk: dict[str, str]
    peers: Path

    def signer(self) -> Ed25519Signer:
        return Ed25519Signer.from_skey((self.data / "log.key").read_text())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Court]]:
    nodes = start_peer_nodes(tmp_path_factory.mktemp("courts"), COURTS)
    with clerks_at(nodes) as clerks:
        yield {code: Court(code, nodes[code].data, nodes[code].serve, http, clerk, nodes[code].peers)
               for code, (http, clerk) in clerks.items()}  # fmt: skip


def _open(c: Court, number: str) -> str:
    r = c.http.post("/v1/dossiers", headers=c.clerk, json={"case_number": number, "case_type": "民事",
                    "parties": [{"role": "原告", "name": "张三", "id_number": "110101199001011234"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def _upload(c: Court, d: str, data: bytes, name: str, media: str) -> str:
    r = c.http.post(f"/v1/dossiers/{d}/documents", content=data, headers={
        **c.clerk, "X-File-Name": quote(name), "Content-Type": media})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


def _signed_get(c: Court, path: str, signer: Ed25519Signer, **kw: Any) -> tuple[httpx2.Response, dict[str, str]]:
    headers = sign_request(signer, "GET", path, to=f"sifa.court/{c.code}", **kw)
    return c.http.get(path, headers=headers), headers


def _retrieve(c: Court, from_court: str, d: str) -> httpx2.Response:
    return c.http.post("/v1/retrievals", headers=c.clerk, json={"from_court": from_court, "dossier": d})


def _held(c: Court, d: str) -> int:
    return c.http.get(f"/v1/dossiers/{d}", headers=c.clerk).status_code


def test_appeal_retrieval_between_three_courts(chain: dict[str, Court], tmp_path: Path) -> None:
    low, mid, high = chain[LOW], chain[MID], chain[HIGH]
    d = _open(low, CASE)
    bigs = [b"\x00\x00\x00\x18ftypmp42" + os.urandom(BIG) for _ in range(2)]  # MP4 by their first box
    names = [f"第{i:03d}号证据 聊天记录.txt" for i in range(FILES - 2)]
    with ThreadPoolExecutor(4) as pool:
        small = list(pool.map(lambda n: _upload(low, d, f"{n}\n证据内容 {n}\n".encode(), n, "text/plain"), names))
    big_shas = [_upload(low, d, b, f"庭审录像{i}.mp4", "video/mp4") for i, b in enumerate(bigs)]
    untransferred = _open(low, "（2026）京0105民初5002号")

    # Before any transfer: refused, at the lower court, and nothing imported.
    r = _retrieve(mid, LOW, d)
    assert (r.status_code, r.json()["code"]) == (502, "peer_refused")
    assert r.json()["detail"]["peer_code"] == "not_transferred"
    r = low.http.post(f"/v1/dossiers/{d}/transfers", headers=low.clerk, json={
        "to_court": MID, "kind": "上诉", "reason": "被告不服一审判决，提起上诉"})  # fmt: skip
    assert r.status_code == 200, r.text

    # Node-to-node requests: signed, fresh, once.
    path = f"/v1/peer/dossiers/{d}/package"
    got, headers = _signed_get(low, path, mid.signer())
    assert got.status_code == 200, got.text[:300]
    package = got.content
    replay = low.http.get(path, headers=headers)
    assert (replay.status_code, replay.json()["code"]) == (401, "request_replayed")
    elsewhere = high.http.get(path, headers=headers)  # captured on its way to the lower court, sent to a third
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (401, "request_misaddressed")
    stale, _ = _signed_get(low, path, mid.signer(), now=time.time() - 3600)
    assert (stale.status_code, stale.json()["code"]) == (401, "request_expired")
    forged, _ = _signed_get(low, path, Ed25519Signer.generate(f"sifa.court/{MID}"))
    assert (forged.status_code, forged.json()["code"]) == (401, "request_signature_invalid")
    stranger, _ = _signed_get(low, path, Ed25519Signer.generate("sifa.court/4401-0101"))
    assert (stranger.status_code, stranger.json()["code"]) == (401, "peer_unknown")
    other, _ = _signed_get(low, f"/v1/peer/dossiers/{untransferred}/package", mid.signer())
    assert (other.status_code, other.json()["code"]) == (403, "not_transferred")
    wrong_court, _ = _signed_get(low, path, high.signer())  # a real peer, but not named by the transfer
    assert (wrong_court.status_code, wrong_court.json()["code"]) == (403, "not_transferred")

    # Tampered packages, sent to the intermediate court: refused with the reason, nothing imported.
    members = _members(package)
    i = next(n for n, (m, _) in enumerate(members) if m.name == f"data/{small[7]}")
    flipped = members[i][1][:5] + bytes([members[i][1][5] ^ 1]) + members[i][1][6:]
    lines = _events(members)
    docs = [json.loads(line) for line in lines]
    docs[3]["proof"], docs[4]["proof"] = docs[4]["proof"], docs[3]["proof"]
    swapped = [(json.dumps(doc, ensure_ascii=False) + "\n").encode() for doc in docs]
    for tampered, reason in [
        (_rebuild([*members[:i], (members[i][0], flipped), *members[i + 1 :]]), "does not hash to its name"),
        (_with_events(members, lines[:10] + lines[11:]), "event version 11 is missing"),
        (_with_events(members, swapped), "is not proved in the checkpoint"),
    ]:
        r = mid.http.post("/v1/received", content=tampered, headers={**mid.clerk, "Content-Type": "application/x-tar"})
        # A 201 here (no code) was a tampered package imported: a store's failure went unchecked (issue 16 item 5).
        assert (r.status_code, r.json().get("code")) == (422, "package_invalid"), r.text[:300]
        assert reason in r.json()["message"]
        assert _held(mid, d) == 404
    blobs = FilesystemBlobStore(mid.data / "blobs")
    assert not blobs.exists(small[7])  # the changed file was never stored

    # The named court retrieves: every byte verified, imported as a received dossier.
    started = time.monotonic()
    r = _retrieve(mid, LOW, d)
    assert r.status_code == 201, r.text
    took = time.monotonic() - started
    imported = r.json()
    assert (imported["files"], imported["from_court"], imported["case_number"]) == (FILES, LOW, CASE)
    assert imported["bytes"] > 2 * BIG and took < 120
    view = mid.http.get(f"/v1/dossiers/{d}", headers=mid.clerk).json()
    assert len(view["documents"]) == FILES and len(view["catalogue"]) == FILES
    assert view["parties"][0]["name"] == "张三"
    # Issue 19: each record shows its original court, leaf and 存证时间 beside the import time.
    assert view["received_from"]["from_court"] == LOW
    for doc in view["documents"].values():
        original = doc["original"]
        assert original["court"] == LOW and original["leaf_index"] == doc["original_leaf"]
        assert original["recorded_at"] is not None and original["recorded_at"] < original["imported_at"]
    listed = mid.http.get("/v1/dossiers", params={"status": "received"}, headers=mid.clerk).json()["dossiers"]
    assert [(x["id"], x["case_number"], x["court"]) for x in listed] == [(d, CASE, MID)]
    # The higher court's own 二审 dossier names the first-instance one it continues.
    appeal = {"case_number": "（2026）京03民终1号", "case_type": "民事", "first_instance": d}
    r = mid.http.post("/v1/dossiers", headers=mid.clerk, json=appeal)
    assert r.status_code == 201, r.text
    second = mid.http.get(f"/v1/dossiers/{r.json()['dossier']}", headers=mid.clerk).json()
    assert second["first_instance"]["dossier"] == d and second["first_instance"]["url"] == f"/v1/dossiers/{d}"
    assert (second["first_instance"]["case_number"], second["first_instance"]["court"]) == (CASE, LOW)
    big = mid.http.get(f"/v1/dossiers/{d}/files/{big_shas[1]}", headers=mid.clerk)
    assert hashlib.sha256(big.content).hexdigest() == big_shas[1]
    # A court not named by the transfer is refused; so is a dossier never transferred.
    r = _retrieve(high, LOW, d)
    assert (r.status_code, r.json()["detail"]["peer_code"]) == (502, "not_transferred")
    assert _held(high, d) == 404
    assert _retrieve(mid, LOW, untransferred).status_code == 502

    # Every retrieval is an event in the lower court's log, naming the court.
    own = low.http.get(f"/v1/dossiers/{d}/package", headers=low.clerk).content
    key = Ed25519Verifier.from_vkey(low.http.get("/v1/log/key").json()["verifier_key"])
    retrievals = [e.doc["body"] for e in read_package_bytes(own, [key]).events if e.doc["type"] == "Retrieved"]
    assert sum(b["by_court"] == MID and b["reason"] == "远程调阅" for b in retrievals) == 2  # the test's and the node's

    # One level further: the intermediate court transfers its received copy; the high court
    # retrieves it with `sifa retrieve`, verifying against the intermediate court's log.
    r = mid.http.post(f"/v1/dossiers/{d}/transfers", headers=mid.clerk, json={
        "to_court": HIGH, "kind": "再审", "reason": "申请再审"})  # fmt: skip
    assert r.status_code == 200, r.text
    env = {**os.environ, "SIFA_DATA_DIR": str(high.data), "SIFA_PEERS": str(high.peers)}
    run = subprocess.run([sys.executable, "-m", "api.cli", "retrieve", "--from", MID, "--dossier", d], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["files"] == FILES
    view = high.http.get(f"/v1/dossiers/{d}", headers=high.clerk).json()
    assert len(view["documents"]) == FILES and view["case_number"] == CASE
    assert all(doc.get("original_leaf") is not None for doc in view["documents"].values())
    again = subprocess.run([sys.executable, "-m", "api.cli", "retrieve", "--from", MID, "--dossier", d], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already holds" in again.stderr

    # Both receiving nodes audit clean.
    for c in (mid, high):
        audit = subprocess.run([sys.executable, "-m", "api.cli", "audit", "--data-dir", str(c.data)], cwd=ROOT,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
        assert audit.returncode == 0, audit.stderr
    with tarfile.open(fileobj=io.BytesIO(package)) as t:
        assert sum(m.name.startswith("data/") for m in t.getmembers()) == FILES
