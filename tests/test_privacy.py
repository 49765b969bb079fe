"""Issue 17 acceptance: the public log tells a stranger nothing about a case.

Two courts, each a node served by uvicorn on 127.0.0.1 (a 基层 court and the 中级 court it
transfers to). A dossier records every kind of event — opening, upload, catalogue, evidence,
service, contract, withdrawal, transfer, the higher court's retrieval (and its receiving), reads,
archive — with a secret in every text field. Then every surface either node shows without a
credential is read — every entry bundle of /tlog, /tlog/checkpoint, every /v1/log/* answer (what
``sifa monitor`` reads), POST /v1/verify for every file, /healthz, the /verify page — and none
of the secrets is anywhere in them. Receipts disclose per role and verify with ``sifa-verify``; a
changed disclosure fails (exit 1, disclosure_mismatch); a redacted receipt still verifies.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.app import create_app
from api.settings import Settings
from evidence.disclosure import read_leaf
from ledger.tiles import TILE_WIDTH, unpack_entries
from ledger.trust import read_trust
from tests.nodes import in_thread, init, trust_entry
from tests.servers import free_port
from verifier.cli import main as verify_main
from verifier.monitor import check as monitor_check

LOW, MID = "1101-0105", "1101-0200"
COURTS = [
    {"code": LOW, "name": "北京市朝阳区人民法院", "level": "基层", "parent": MID},
    {"code": MID, "name": "北京市第三中级人民法院", "level": "中级", "parent": None},
]
CASE = "（2026）京0105民初9917号"
# Every text the dossier records; none may reach a public surface.
SECRETS = {
    "party_name": "欧阳秘密甲", "party_id": "110105199001019917", "party_phone": "13900009917",
    "party_address": "北京市朝阳区秘密街九九一七号", "party_role": "原告秘角",
    "defendant": "司马秘密乙", "file_name": "欧阳秘密甲借款合同.pdf", "doc_type": "秘密文书类型",
    "category": "秘密类别", "title": "秘密题名之卷", "evidence_name": "秘密证据名称.pdf",
    "description": "秘密的证据说明文字", "channel": "秘密送达渠道", "contract_party": "秘密合同当事人丙",
    "withdraw_reason": "撤回的秘密理由", "transfer_reason": "上诉人欧阳秘密甲不服一审判决",
    "secondary_title": "合议庭秘密评议笔录",
}  # fmt: skip


@dataclass
class Node:
    code: str
    url: str
    app: Any
    http: httpx2.Client
    clerk: dict[str, str]
    clerk_id: str
    data: Path
    archivist: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(scope="module")
def courts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    root = tmp_path_factory.mktemp("privacy")
    admins = {c["code"]: init(root / c["code"], c["code"], c["name"]) for c in COURTS}
    ports = {code: free_port() for code in admins}
    entries = {}
    for code in admins:
        (root / code / "courts.json").write_text(json.dumps({"courts": COURTS}, ensure_ascii=False))
        entries[code] = {**trust_entry(root / code), "url": f"http://127.0.0.1:{ports[code]}"}
    nodes: dict[str, Node] = {}
    with contextlib.ExitStack() as stack:
        for code in admins:
            peers = root / f"peers-{code}.json"
            others = [e for c, e in entries.items() if c != code]
            peers.write_text(json.dumps({"format": "sifa-trust/1", "logs": others}, ensure_ascii=False))
            settings = Settings(data_dir=root / code, port=ports[code], peers=peers, sequencer="thread",
                                seal_interval_seconds=0.01, access_log=False)  # fmt: skip
            app = create_app(settings)
            stack.enter_context(in_thread(app, ports[code]))
            url = f"http://127.0.0.1:{ports[code]}"
            http = stack.enter_context(httpx2.Client(base_url=url, timeout=60))
            r = http.post("/v1/principals", json={"name": "书记员秘密名", "role": "clerk"},
                          headers={"Authorization": f"Bearer {admins[code]}"})  # fmt: skip
            assert r.status_code == 201, r.text
            clerk = {"Authorization": f"Bearer {r.json()['token']}"}
            a = http.post("/v1/principals", json={"name": "档案员", "role": "archivist"},
                          headers={"Authorization": f"Bearer {admins[code]}"})  # fmt: skip
            archivist = {"Authorization": f"Bearer {a.json()['token']}"}
            nodes[code] = Node(code, url, app, http, clerk, r.json()["id"], root / code, archivist,
                               {"Authorization": f"Bearer {admins[code]}"})  # fmt: skip
        yield nodes


def _ok(r: httpx2.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def case(courts: dict[str, Node]) -> dict[str, Any]:
    """Every kind of event, a secret in every text field; returns what the checks need."""
    low, mid = courts[LOW], courts[MID]
    h, c = low.http, low.clerk
    s = SECRETS
    plaintiff = {"role": s["party_role"], "name": s["party_name"], "id_number": s["party_id"],
                 "phone": s["party_phone"], "address": s["party_address"]}  # fmt: skip
    defendant = {"role": "被告", "name": s["defendant"]}
    d = _ok(h.post("/v1/dossiers", json={"case_number": CASE, "case_type": "民事", "parties": [plaintiff, defendant]},
                   headers=c))["dossier"]  # fmt: skip
    body = "借款合同正文 9917".encode()
    up = _ok(h.post(f"/v1/dossiers/{d}/documents", content=body, headers={**c, "X-File-Name": quote(s["file_name"]),
                    "X-Doc-Type": quote(s["doc_type"]), "Content-Type": "text/plain"}))  # fmt: skip
    report = "审理报告 9917".encode()
    sec = _ok(h.post(f"/v1/dossiers/{d}/documents", content=report, headers={**c, "X-File-Name": quote("报告.txt"),
                     "Content-Type": "text/plain"}))  # fmt: skip
    _ok(h.post(f"/v1/dossiers/{d}/catalogue", json={"document_id": up["document_id"], "volume": "正卷",
               "category": s["category"], "order": 1, "title": s["title"], "pages": 1}, headers=c))  # fmt: skip
    _ok(h.post(f"/v1/dossiers/{d}/catalogue", json={"document_id": sec["document_id"], "volume": "副卷",
               "category": "审理报告", "order": 2, "title": s["secondary_title"], "pages": 1}, headers=c))  # fmt: skip
    evidence = hashlib.sha256(b"evidence 9917").hexdigest()
    _ok(h.post(f"/v1/dossiers/{d}/evidence", json={"sha256": evidence, "size": 13, "name": s["evidence_name"],
               "submitter": plaintiff, "description": s["description"]}, headers=c))  # fmt: skip
    _ok(h.post(f"/v1/dossiers/{d}/services", json={"document_id": up["document_id"], "recipient": defendant,
               "channel": s["channel"], "sent_at": "2026-11-22T08:00:00+08:00"}, headers=c))  # fmt: skip
    contract = hashlib.sha256(b"contract 9917").hexdigest()
    _ok(h.post(f"/v1/dossiers/{d}/contracts", json={"contract_sha256": contract, "parties": [
        plaintiff, {"role": "乙方", "name": s["contract_party"]}], "signed_at": "2026-01-02T03:04:05Z"},
        headers=c))  # fmt: skip
    # A withdrawal has no HTTP route yet: the node's own application records it (the same service).
    withdrawn = _ok(h.post(f"/v1/dossiers/{d}/documents", content=b"withdrawn 9917", headers={**c,
                           "X-File-Name": quote("撤回件.txt"), "Content-Type": "text/plain"}))  # fmt: skip
    low.app.state.services.dossiers.withdraw(d, document_id=withdrawn["document_id"], reason=s["withdraw_reason"],
                                             actor=f"clerk:{low.clerk_id}", role="clerk")  # fmt: skip
    _ok(h.get(f"/v1/dossiers/{d}", headers=c))  # a read: a retrieval event naming the reader
    _ok(h.post(f"/v1/dossiers/{d}/transfers", json={"to_court": MID, "kind": "上诉", "reason": s["transfer_reason"]},
               headers=c))  # fmt: skip
    got = _ok(mid.http.post("/v1/retrievals", json={"from_court": LOW, "dossier": d}, headers=mid.clerk))
    assert got["events"] >= 10
    _ok(h.post(f"/v1/dossiers/{d}/archive", json={"retention": "永久"}, headers=low.archivist))
    for node in (low, mid):
        node.app.state.services.sealer.wait_sealed(timeout=30)
    events = _ok(h.get(f"/v1/dossiers/{d}/events", headers=c))
    return {"dossier": d, "upload": up, "secondary": sec, "files": [up["sha256"], sec["sha256"], evidence, contract,
            withdrawn["sha256"]], "events": events}  # fmt: skip


def test_the_node_secret_is_made_by_init_private_and_never_published(
    courts: dict[str, Node], case: dict[str, Any]
) -> None:
    """``sifa init`` writes leaf.secret (32 random bytes, hex, 0600); each court has its own."""
    secrets = set()
    for node in courts.values():
        path = node.data / "leaf.secret"
        assert path.stat().st_mode & 0o777 == 0o600
        secret = bytes.fromhex(path.read_text().strip())
        assert len(secret) == 32 and secret == node.app.state.services.sealer.secret
        secrets.add(secret)
        for data in _public(node).values():
            assert secret.hex().encode() not in data
    assert len(secrets) == 2


def _forms(text: str) -> list[bytes]:
    """A secret as it could appear: UTF-8, JSON-escaped ASCII, percent-encoded."""
    return [text.encode(), json.dumps(text)[1:-1].encode(), quote(text).encode()]


def _public(node: Node) -> dict[str, bytes]:
    """Everything ``node`` answers without a credential, by what was asked."""
    out: dict[str, bytes] = {}
    with httpx2.Client(base_url=node.url, timeout=30) as anon:  # no credential, ever

        def get(path: str) -> bytes:
            r = anon.get(path)
            assert r.status_code == 200, (path, r.text)
            out[path] = r.content
            return r.content

        text = get("/tlog/checkpoint").decode()
        size = int(text.split("\n")[1])
        for n in range(0, size, TILE_WIDTH):
            width = min(TILE_WIDTH, size - n)
            index = n // TILE_WIDTH
            path = "/".join([f"x{p}" for p in _groups(index)[:-1]] + [_groups(index)[-1]])
            entries = unpack_entries(get(f"/tlog/tile/entries/{path}" + (f".p/{width}" if width < TILE_WIDTH else "")))
            assert len(entries) == width
            for leaf in entries:
                assert read_leaf(leaf).format == "sifa-leaf/2"  # every leaf of this log is the private format
        get("/v1/log/checkpoint")
        get("/v1/log/key")
        for i in range(size):
            get(f"/v1/log/proof/inclusion?index={i}&size={size}")
        if size > 1:
            get(f"/v1/log/proof/consistency?from=1&to={size}")
        get("/healthz")
        get("/verify")
        get("/verify/verify.js")
    return out


def _groups(n: int) -> list[str]:
    digits = f"{n:d}"
    digits = digits.zfill((len(digits) + 2) // 3 * 3)
    return [digits[i : i + 3] for i in range(0, len(digits), 3)]


def test_no_secret_on_any_public_surface(courts: dict[str, Node], case: dict[str, Any], tmp_path: Path) -> None:
    secrets = [*SECRETS.values(), CASE, case["dossier"], *(f"clerk:{n.clerk_id}" for n in courts.values())]
    secrets += [n.clerk_id for n in courts.values()]
    seen: dict[str, bytes] = {}
    for node in courts.values():
        seen.update({f"{node.code} GET {k}": v for k, v in _public(node).items()})
        with httpx2.Client(base_url=node.url, timeout=30) as anon:
            for sha in case["files"]:
                r = anon.post("/v1/verify", json={"sha256": sha})
                assert r.status_code == 200
                seen[f"{node.code} POST /v1/verify {sha}"] = r.content
        # what `sifa monitor` reads (its checkpoint and consistency proofs) answers without a credential
        trust = tmp_path / f"trust-{node.code}.json"
        trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [trust_entry(node.data)]}, ensure_ascii=False))
        assert monitor_check(node.url, read_trust(trust), tmp_path / f"monitor-{node.code}.json").ok
    recorded = json.loads(seen[f"{LOW} POST /v1/verify {case['upload']['sha256']}"])
    assert recorded["recorded"] and {r["item"] for r in recorded["records"]} >= {"DocumentUploaded"}
    for where, data in seen.items():
        for secret in secrets:
            for form in _forms(secret):
                assert form not in data, f"{secret!r} is readable in {where}"


def _receipt(node: Node, d: str, version: int, headers: dict[str, str], path: Path) -> Path:
    r = node.http.get(f"/v1/dossiers/{d}/receipts/{version}", headers=headers)
    assert r.status_code == 200, r.text
    path.write_text(json.dumps(r.json(), ensure_ascii=False), encoding="utf-8")
    return path


def _verify(*args: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = verify_main([*args, "--json"])
    return code, json.loads(out.getvalue()), err.getvalue()


def test_disclosures_verify_per_role_a_changed_one_fails_a_redacted_one_verifies(
    courts: dict[str, Node], case: dict[str, Any], tmp_path: Path
) -> None:
    low, d = courts[LOW], case["dossier"]
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [trust_entry(low.data)]}, ensure_ascii=False))
    upload_version = case["upload"]["version"] - 1  # the upload, before its automatic cataloguing
    file = tmp_path / "contract.pdf"
    file.write_bytes("借款合同正文 9917".encode())
    # staff: every field opens
    staff = _receipt(low, d, upload_version, low.clerk, tmp_path / "staff.json")
    code, result, err = _verify(str(file), "--receipt", str(staff), "--trust", str(trust))
    assert code == 0, err
    fields = {f["path"]: f for f in result["fields"]}
    assert all(f["disclosed"] for f in fields.values())
    assert fields["name"]["value"] == SECRETS["file_name"] and fields["actor"]["value"] == f"clerk:{low.clerk_id}"
    assert f'文件名 (name): "{SECRETS["file_name"]}" — 已核验 verified' in err
    # a lawyer admitted to the dossier: the fields their role may read, never another principal's id
    lawyer = _ok(low.http.post("/v1/principals", json={"name": "律师", "role": "lawyer"},
                               headers=low.admin))  # fmt: skip
    r = low.http.post(f"/v1/principals/{lawyer['id']}/admissions", json={"dossier": d}, headers=low.clerk)
    assert r.status_code == 204, r.text
    as_lawyer = {"Authorization": f"Bearer {lawyer['token']}"}
    theirs = _receipt(low, d, upload_version, as_lawyer, tmp_path / "lawyer.json")
    code, result, err = _verify(str(file), "--receipt", str(theirs), "--trust", str(trust))
    assert code == 0, err
    fields = {f["path"]: f for f in result["fields"]}
    assert fields["name"]["value"] == SECRETS["file_name"]
    assert not fields["actor"]["disclosed"] and "操作人 (actor): 未披露 / not disclosed" in err
    assert f"clerk:{low.clerk_id}" not in theirs.read_text("utf-8")
    # the 副卷 document's events are not theirs to see (its receipt is refused as not existing)
    r = low.http.get(f"/v1/dossiers/{d}/receipts/{case['secondary']['version'] - 1}", headers=as_lawyer)
    assert r.status_code != 200 and SECRETS["secondary_title"] not in r.text
    # a changed disclosure: refused, exit 1, disclosure_mismatch naming the path, no field shown as verified
    doc = json.loads(staff.read_text("utf-8"))
    doc["disclosures"] = [{**x, "value": "王五借款合同.pdf"} if x["path"] == "name" else x for x in doc["disclosures"]]
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code, result, err = _verify(str(file), "--receipt", str(changed), "--trust", str(trust))
    assert code == 1 and "fields" not in result
    failed = [c for c in result["checks"] if not c["ok"]]
    assert [(c["check"], c["code"], c["path"]) for c in failed] == [("disclosures", "disclosure_mismatch", "name")]
    assert "王五" not in err.replace(str(changed), "")
    # redacted for a bank: only the file name; it verifies the same, the rest is not disclosed
    redacted = tmp_path / "redacted.json"
    with contextlib.redirect_stderr(io.StringIO()):
        assert verify_main(["redact", str(theirs), "--keep", "文件名", "-o", str(redacted)]) == 0
    kept = json.loads(redacted.read_text("utf-8"))
    assert [x["path"] for x in kept["disclosures"]] == ["name"]
    code, result, err = _verify(str(file), "--receipt", str(redacted), "--trust", str(trust))
    assert code == 0, err
    shown = {f["path"]: f.get("value") for f in result["fields"] if f["disclosed"]}
    assert shown == {"name": SECRETS["file_name"]}
    for secret in (SECRETS["doc_type"], CASE, SECRETS["party_id"], f"clerk:{low.clerk_id}"):
        assert secret not in redacted.read_text("utf-8")
