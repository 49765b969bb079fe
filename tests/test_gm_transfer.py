"""A dossier moved between courts of different suites: opened at a SHA-256 court, transferred to a
国密 court (SM3 tree, SM2 checkpoints), and on from there to another SHA-256 court. Each receiving
node verifies the package against the sending court's log with that log's own hash, imports it,
and its own package of the dossier verifies end to end with the lawyer's verifier (docs/gm.md)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from evidence.package import read_package_bytes
from ledger.note import verifier_from_vkey
from ledger.suite import suite_of_key
from tests.nodes import PeerNode, start_peer_nodes
from verifier.cli import main as sifa_verify

LOW, GM_COURT, HIGH = "1101-0105", "1101-0200", "1100-0000"
COURTS = [
    {"code": LOW, "name": "北京市朝阳区人民法院", "level": "基层", "parent": GM_COURT},
    {"code": GM_COURT, "name": "北京市第三中级人民法院", "level": "中级", "parent": HIGH, "crypto": "gm"},
    {"code": HIGH, "name": "北京市高级人民法院", "level": "高级", "parent": None},
]
CASE = "（2026）京0105民初6001号"


@pytest.fixture(scope="module")
def courts(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[PeerNode, httpx2.Client, dict[str, str]]]]:
    nodes = start_peer_nodes(tmp_path_factory.mktemp("gm-courts"), COURTS)
    out: dict[str, tuple[PeerNode, httpx2.Client, dict[str, str]]] = {}
    try:
        for code, n in nodes.items():
            n.serve.sealing()
            http = httpx2.Client(base_url=n.serve.url, timeout=120)
            r = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                          headers={"Authorization": f"Bearer {n.admin}"})  # fmt: skip
            assert r.status_code == 201, r.text
            out[code] = (n, http, {"Authorization": f"Bearer {r.json()['token']}"})
        yield out
    finally:
        for _, http, _ in out.values():
            http.close()
        for n in nodes.values():
            n.serve.stop()


def _verify_package(http: httpx2.Client, clerk: dict[str, str], d: str, tmp_path: Path, name: str,
                    capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:  # fmt: skip
    package = http.get(f"/v1/dossiers/{d}/package", headers=clerk)
    assert package.status_code == 200, package.text[:300]
    key = http.get("/v1/log/key").json()
    (tmp_path / f"{name}.tar").write_bytes(package.content)
    (tmp_path / f"{name}.json").write_text(
        json.dumps({"logs": [{"key": key["verifier_key"], "crypto": key["crypto"]}]})
    )
    capsys.readouterr()
    code = sifa_verify(
        ["--dossier", str(tmp_path / f"{name}.tar"), "--trust", str(tmp_path / f"{name}.json"), "--json"]
    )
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    result: dict[str, Any] = json.loads(out.out)
    result["package"] = package.content
    result["key"] = key
    return result


def test_sha256_to_gm_and_on_to_sha256(courts: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (_, low, low_clerk), (_, gm, gm_clerk), (_, high, high_clerk) = (courts[c] for c in (LOW, GM_COURT, HIGH))
    r = low.post("/v1/dossiers", headers=low_clerk, json={"case_number": CASE, "case_type": "民事",
                 "parties": [{"role": "原告", "name": "张三", "id_number": "110101199001011234"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    d = str(r.json()["dossier"])
    files = [
        ("证据 一 " + os.urandom(8).hex() + "\n").encode() * 3000,
        "证据 二\n聊天记录\n".encode(),
    ]  # text/plain: text
    shas = []
    for i, data in enumerate(files):
        up = low.post(f"/v1/dossiers/{d}/documents", content=data, headers={**low_clerk,
                      "X-File-Name": quote(f"第{i}号证据.txt"), "Content-Type": "text/plain"})  # fmt: skip
        assert up.status_code == 201, up.text
        shas.append(up.json()["sha256"])
    first = _verify_package(low, low_clerk, d, tmp_path, "low", capsys)
    assert first["key"]["crypto"] == "sha256"

    # SHA-256 court -> GM court: the GM node verifies the package with SHA-256 (the lower court's key says so).
    r = low.post(f"/v1/dossiers/{d}/transfers", headers=low_clerk, json={"to_court": GM_COURT, "kind": "上诉",
                 "reason": "被告不服一审判决"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = gm.post("/v1/retrievals", headers=gm_clerk, json={"from_court": LOW, "dossier": d})
    assert r.status_code == 201, r.text
    assert (r.json()["from_court"], r.json()["files"]) == (LOW, 2)
    at_gm = _verify_package(gm, gm_clerk, d, tmp_path, "gm", capsys)
    assert at_gm["key"]["crypto"] == "gm"
    assert isinstance(at_gm["log"], str) and at_gm["log"] == f"sifa.court/{GM_COURT}"
    gm_key = verifier_from_vkey(at_gm["key"]["verifier_key"])
    assert suite_of_key(gm_key).name == "gm"
    held = read_package_bytes(at_gm["package"], [gm_key])
    assert held.hasher.name == "sm3"
    assert any(e.doc["type"] == "Received" for e in held.events)  # the handover, proved in the GM log
    assert any("(gm)" in c["detail"] for c in at_gm["checks"] if c["check"] == "checkpoint")
    for sha in shas:
        got = gm.get(f"/v1/dossiers/{d}/files/{sha}", headers=gm_clerk)
        assert hashlib.sha256(got.content).hexdigest() == sha

    # GM court -> SHA-256 court: the receiving node verifies against the GM log with SM3 and SM2.
    r = gm.post(f"/v1/dossiers/{d}/transfers", headers=gm_clerk, json={"to_court": HIGH, "kind": "再审",
                "reason": "申请再审"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = high.post("/v1/retrievals", headers=high_clerk, json={"from_court": GM_COURT, "dossier": d})
    assert r.status_code == 201, r.text
    at_high = _verify_package(high, high_clerk, d, tmp_path, "high", capsys)
    assert at_high["key"]["crypto"] == "sha256"
    view = high.get(f"/v1/dossiers/{d}", headers=high_clerk).json()
    assert view["case_number"] == CASE and len(view["documents"]) == 2
    assert view["parties"][0]["name"] == "张三"
    # The GM court's package itself, handed to a lawyer with a trust file naming both courts, verifies.
    both = {"logs": [{"key": first["key"]["verifier_key"]}, {"key": at_gm["key"]["verifier_key"]}]}
    (tmp_path / "both.json").write_text(json.dumps(both))
    assert sifa_verify(["--dossier", str(tmp_path / "gm.tar"), "--trust", str(tmp_path / "both.json")]) == 0
    # A package checked against the wrong court's key is refused.
    (tmp_path / "wrong.json").write_text(json.dumps({"logs": [{"key": first["key"]["verifier_key"]}]}))
    assert sifa_verify(["--dossier", str(tmp_path / "gm.tar"), "--trust", str(tmp_path / "wrong.json")]) == 1
