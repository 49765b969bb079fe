"""A dossier holding 送达 and 执行-side events (private: their leaves hold document ids as
commitments) goes up on appeal between two ``sifa serve`` processes: the lower court's package of it
(GET …/package) verifies whole with ``sifa-verify --dossier``, and the higher court retrieves,
verifies and imports it. Before the fix every package of such a dossier answered 500."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest

from tests.nodes import PeerNode, start_peer_nodes
from verifier.cli import main as sifa_verify

LOW, MID = "1101-0105", "1101-0200"
COURTS = [
    {"code": LOW, "name": "北京市朝阳区人民法院", "level": "基层", "parent": MID},
    {"code": MID, "name": "北京市第三中级人民法院", "level": "中级", "parent": None},
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    nodes = start_peer_nodes(tmp_path_factory.mktemp("courts"), COURTS)
    try:
        yield nodes
    finally:
        for n in nodes.values():
            n.serve.stop()


def _clerk(http: httpx2.Client, admin: str) -> dict[str, str]:
    r = http.post(
        "/v1/principals", json={"name": "书记员", "role": "clerk"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_served_and_closed_dossier_goes_up_on_appeal(pair: dict[str, PeerNode], tmp_path: Path) -> None:
    low, mid = pair[LOW], pair[MID]
    with (
        httpx2.Client(base_url=low.serve.url, timeout=60) as lo,
        httpx2.Client(base_url=mid.serve.url, timeout=60) as hi,
    ):
        lc, hc = _clerk(lo, low.admin), _clerk(hi, mid.admin)
        r = lo.post("/v1/dossiers", headers=lc, json={"case_number": "（2026）京0105民初7001号", "case_type": "民事",
                                                      "parties": [{"role": "原告", "name": "张三"}]})  # fmt: skip
        assert r.status_code == 201, r.text
        d = r.json()["dossier"]
        docs = []
        for name, body in (("民事判决书.txt", "判决如下：……"), ("送达回执.txt", "已签收")):
            r = lo.post(f"/v1/dossiers/{d}/documents", content=body.encode(),
                        headers={**lc, "X-File-Name": quote(name), "Content-Type": "text/plain"})  # fmt: skip
            assert r.status_code == 201, r.text
            docs.append(r.json()["document_id"])
        r = lo.post(f"/v1/dossiers/{d}/service-records", headers=lc, json={
            "document_id": docs[0], "channel": "电子送达平台", "sent_at": "2026-11-23T09:00:00Z", "party": 0,
            "receipt_document_id": docs[1]})  # fmt: skip
        assert r.status_code == 201, r.text
        r = lo.post(f"/v1/dossiers/{d}/closure", headers=lc, json={"method": "判决", "date": "2026-11-30"})
        assert r.status_code == 200, r.text
        appeal = {"to_court": MID, "kind": "上诉", "reason": "原告不服一审判决，提起上诉"}
        r = lo.post(f"/v1/dossiers/{d}/transfers", headers=lc, json=appeal)
        assert r.status_code == 200, r.text
        package = lo.get(f"/v1/dossiers/{d}/package", headers=lc)
        assert package.status_code == 200, package.text[:300]
        key = lo.get("/v1/log/key").json()["verifier_key"]
        trust = tmp_path / "trust.json"
        trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [{"key": key}]}), encoding="utf-8")
        (tmp_path / "package.tar").write_bytes(package.content)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
            assert sifa_verify(["--dossier", str(tmp_path / "package.tar"), "--trust", str(trust)]) == 0, err.getvalue()
        r = hi.post("/v1/retrievals", headers=hc, json={"from_court": LOW, "dossier": d})
        assert r.status_code == 201, r.text
        assert r.json()["from_court"] == LOW
        # The received dossier holds the documents (its events are the lower court's, proved in the package).
        types = [e["type"] for e in hi.get(f"/v1/dossiers/{d}/events", headers=hc).json()]
        assert types.count("DocumentReceived") == 2, types
