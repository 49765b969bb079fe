"""A court node on the 国密 suite (``sifa init --crypto gm``), end to end over real HTTP: SM3 tree, SM2
checkpoints, SM4-GCM events at rest; its receipts, dossier packages, audit and monitor (docs/gm.md)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.app import create_app
from api.cli import main as sifa
from api.node import load_config, load_signer
from api.settings import Settings
from dossier.cipher import SM4Cipher
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.gm import SM2Signer, SM2Verifier
from ledger.hashing import SM3Hasher
from ledger.note import Note, verifier_from_vkey
from ledger.receipt import Receipt, verify_receipt
from tests.nodes import Node, in_thread
from tests.servers import free_port
from verifier.cli import main as sifa_verify


def _quiet(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = sifa(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def gm_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("gm") / "data"
    code, admin = _quiet(
        ["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院", "--crypto", "gm"]
    )
    assert code == 0
    port = free_port()
    settings = Settings(data_dir=data, port=port, seal_interval_seconds=0.01, sequencer="thread")
    with in_thread(create_app(settings), port):
        n = Node(f"http://127.0.0.1:{port}", data, admin.strip())
        for role in ("clerk", "lawyer"):
            r = n.http.post(
                "/v1/principals", json={"name": f"{role} 测试", "role": role}, headers=n.as_("administrator")
            )
            assert r.status_code == 201, r.text
            n.tokens[role], n.ids[role] = r.json()["token"], r.json()["id"]
        yield n
        n.http.close()


def _trust(node: Node, path: Path) -> Path:
    code, out = _quiet(["trust-entry", str(node.data)])
    assert code == 0
    path.write_text(json.dumps({"logs": [json.loads(out)]}, ensure_ascii=False), encoding="utf-8")
    return path


_numbers = iter(range(300, 10_000))


def _dossier_with_file(node: Node, body: bytes) -> tuple[str, dict[str, Any]]:
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"), json={
        "case_number": f"（2026）京0105民初{next(_numbers)}号", "case_type": "民事",
        "parties": [{"role": "原告", "name": "张三", "id_number": "110101199001011234"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    d = str(r.json()["dossier"])
    headers = {**node.as_("clerk"), "X-File-Name": "%E8%B5%B7%E8%AF%89%E7%8A%B6.pdf", "Content-Type": "application/pdf"}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=body, headers=headers)
    assert r.status_code == 201, r.text
    return d, r.json()


def _receipt(node: Node, d: str, version: int, tail: str = "") -> Any:
    deadline = time.monotonic() + 20
    while True:
        r = node.http.get(f"/v1/dossiers/{d}/receipts/{version}{tail}", headers=node.as_("clerk"))
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json() if not tail else r.text
        time.sleep(0.05)


def test_init_fixes_the_suite_in_config_key_trust_entry_and_first_checkpoint(gm_node: Node) -> None:
    data = gm_node.data
    assert load_config(data).crypto == "gm"
    signer = load_signer(data)
    assert isinstance(signer, SM2Signer)
    code, out = _quiet(["trust-entry", str(data)])
    entry = json.loads(out)
    assert code == 0 and entry["crypto"] == "gm"
    assert isinstance(verifier_from_vkey(entry["key"]), SM2Verifier)
    key = gm_node.http.get("/v1/log/key").json()
    assert (key["crypto"], key["hash"], key["signature"]) == ("gm", "sm3", "sm2")
    with sqlite3.connect(data / "tree.sqlite") as db:
        (note,) = db.execute("SELECT note FROM sifa_tree_checkpoints WHERE size = 0").fetchone()
    checkpoint, _ = open_checkpoint(note, [signer.verifier])
    assert checkpoint.root_hash == SM3Hasher().empty_root()  # SM3(""), not SHA-256("")
    assert checkpoint.root_hash != hashlib.sha256(b"").digest()


def test_a_node_refuses_a_log_key_of_another_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "n"
    assert _quiet(["init", str(data), "--court", "1101-0105", "--name", "法院", "--crypto", "gm"])[0] == 0
    from ledger.note import Ed25519Signer

    (data / "log.key").write_text(Ed25519Signer.generate("sifa.court/1101-0105").skey() + "\n")
    assert sifa(["trust-entry", str(data)]) == 2
    assert "node.json does not match this node's keys" in capsys.readouterr().err
    assert sifa(["init", str(tmp_path / "m"), "--court", "1101-0105", "--name", "法院", "--crypto", "sm9"]) == 2


def test_events_at_rest_are_sm4_gcm(gm_node: Node) -> None:
    _dossier_with_file(gm_node, b"%PDF-1.4 at rest")
    key = base64.b64decode((gm_node.data / "events.key").read_text().strip())
    assert len(key) == 16
    with sqlite3.connect(gm_node.data / "events.sqlite") as db:
        blobs = [row[0] for row in db.execute("SELECT state FROM stored_events LIMIT 5")]
    assert blobs
    cipher = SM4Cipher({"CIPHER_KEY": base64.b64encode(key).decode()})
    for blob in blobs:
        plain = cipher.decrypt(blob)
        assert plain and "张三".encode() not in blob
        with pytest.raises(InvalidTag):  # AES-GCM under the same key: the tag does not verify
            AESGCM(key).decrypt(blob[:12], blob[28:] + blob[12:28], None)


def test_sm4_gcm_known_answer_and_tamper() -> None:
    # SPEC: RFC 8998 Appendix A.1, SM4-GCM test vector (ciphertext and tag), through the same OpenSSL path.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                          "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")  # fmt: skip
    enc = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    out = enc.update(plain) + enc.finalize()
    assert out.hex().upper() == ("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                                 "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")  # fmt: skip
    assert enc.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"
    # The eventsourcing cipher round-trips, and GmSSL (code we did not write) opens what it seals.
    cipher = SM4Cipher({"CIPHER_KEY": base64.b64encode(key).decode()})
    sealed = cipher.encrypt("卷宗".encode())
    assert cipher.decrypt(sealed) == "卷宗".encode()
    import gmssl_pyx

    assert bytes(gmssl_pyx.sm4_gcm_decrypt(key, sealed[:12], b"", sealed[28:], sealed[12:28])) == "卷宗".encode()
    for cut in (sealed[:-1], sealed[:27], sealed[:5] + bytes([sealed[5] ^ 1]) + sealed[6:]):
        with pytest.raises(ValueError):
            cipher.decrypt(cut)
    with pytest.raises(ValueError):
        SM4Cipher({"CIPHER_KEY": base64.b64encode(bytes(32)).decode()})


def test_receipt_names_the_suite_and_verifies_offline(gm_node: Node, tmp_path: Path) -> None:
    body = "%PDF-1.4 国密 起诉状".encode()
    d, _ = _dossier_with_file(gm_node, body)
    doc = _receipt(gm_node, d, 2)
    assert doc["log"]["hash"] == "sm3" and doc["log"]["signature"] == "sm2"
    receipt = Receipt.from_json(json.dumps(doc))
    assert receipt.leaf_hash_hex == SM3Hasher().leaf(receipt.leaf_data).hex()
    verify_receipt(receipt, [load_signer(gm_node.data).verifier])
    trust = _trust(gm_node, tmp_path / "t.json")
    (tmp_path / "f.pdf").write_bytes(body)
    (tmp_path / "r.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert sifa_verify([str(tmp_path / "f.pdf"), "--receipt", str(tmp_path / "r.json"), "--trust", str(trust)]) == 0
    (tmp_path / "r.tlog-proof").write_text(_receipt(gm_node, d, 2, "/tlog-proof"), encoding="utf-8")
    assert sifa_verify([str(tmp_path / "f.pdf"), "--receipt", str(tmp_path / "r.tlog-proof"),
                        "--trust", str(trust)]) == 0  # fmt: skip
    # A receipt that claims the SHA-256 suite for a GM log is refused (the suite is the key's, not the receipt's).
    lied = {**doc, "log": {**doc["log"], "hash": "sha256", "signature": "ed25519"},
            "terms": {**doc["terms"], "交易哈希": hashlib.sha256(b"\x00" + receipt.leaf_data).hexdigest()}}  # fmt: skip
    (tmp_path / "lied.json").write_text(json.dumps(lied, ensure_ascii=False), encoding="utf-8")
    assert sifa_verify([str(tmp_path / "f.pdf"), "--receipt", str(tmp_path / "lied.json"), "--trust", str(trust)]) == 1
    # A trust entry that names another suite than its key is refused as unreadable.
    entry = json.loads(trust.read_text(encoding="utf-8"))["logs"][0]
    (tmp_path / "bad.json").write_text(json.dumps({"logs": [{**entry, "crypto": "sha256"}]}), encoding="utf-8")
    assert sifa_verify([str(tmp_path / "f.pdf"), "--receipt", str(tmp_path / "r.json"), "--trust",
                        str(tmp_path / "bad.json")]) == 2  # fmt: skip


def test_certificate_of_a_gm_log_verifies_offline(gm_node: Node, tmp_path: Path) -> None:
    """The 存证证书 of a GM node: SM2-signed, its attached receipt proved with SM3 (the hash its trusted key
    names; sifa-verify --certificate hashed with SHA-256), the leaf's disclosures opened with SHA-256
    (sifa-leaf/2 keeps its commitments on every log)."""
    from tests.test_certificate import verify_cli

    body = "%PDF-1.4 国密 存证证书".encode()
    d, _ = _dossier_with_file(gm_node, body)
    _receipt(gm_node, d, 2)  # sealed
    r = gm_node.http.get(f"/v1/dossiers/{d}/receipts/2/certificate", headers=gm_node.as_("clerk"))
    assert r.status_code == 200, r.text
    (tmp_path / "证书.pdf").write_bytes(r.content)
    (tmp_path / "f.pdf").write_bytes(body)
    trust = _trust(gm_node, tmp_path / "t.json")
    code, result = verify_cli(tmp_path / "证书.pdf", trust, tmp_path / "f.pdf")
    assert code == 0 and result["valid"], result
    checks = [c["check"] for c in result["checks"]]  # type: ignore[attr-defined]
    assert checks == ["receipt", "disclosures", "file_hash", "certificate_signature", "certificate"]


def test_dossier_package_audit_and_monitor(gm_node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d, _ = _dossier_with_file(gm_node, b"%PDF-1.4 package")
    _receipt(gm_node, d, 3)  # everything up to the catalogue entry is sealed
    package = gm_node.http.get(f"/v1/dossiers/{d}/package", headers=gm_node.as_("clerk"))
    assert package.status_code == 200, package.text
    (tmp_path / "p.tar").write_bytes(package.content)
    trust = _trust(gm_node, tmp_path / "t.json")
    capsys.readouterr()
    assert sifa_verify(["--dossier", str(tmp_path / "p.tar"), "--trust", str(trust), "--json"]) == 0
    assert "(gm)" in capsys.readouterr().out
    assert sifa(["audit", "--data-dir", str(gm_node.data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True
    state = tmp_path / "state.json"
    monitor = ["monitor", gm_node.base, "--trust", str(trust), "--state", str(state), "--once"]
    assert sifa(monitor) == 0
    first = Checkpoint.from_text(Note.from_text(json.loads(state.read_text())["checkpoint"]).text).size
    _dossier_with_file(gm_node, b"%PDF-1.4 grows")
    deadline = time.monotonic() + 20
    while True:
        assert sifa(monitor) == 0, capsys.readouterr().err
        now = Checkpoint.from_text(Note.from_text(json.loads(state.read_text())["checkpoint"]).text).size
        if now > first or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert now > first and "consistently" in capsys.readouterr().out


def test_the_verifier_of_a_gm_log_needs_only_the_gm_extra(gm_node: Node, tmp_path: Path) -> None:
    """A lawyer's verifier: PyNaCl alone for a SHA-256 log; for a GM log, the gm extra (GmSSL) beside it."""
    import subprocess
    import sys

    from tests.test_verifier import BLOCKER, CASES, CORPUS

    body = b"%PDF-1.4 lawyer"
    d, _ = _dossier_with_file(gm_node, body)
    (tmp_path / "r.json").write_text(json.dumps(_receipt(gm_node, d, 2), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "f.pdf").write_bytes(body)
    trust = _trust(gm_node, tmp_path / "t.json")
    args = [str(tmp_path / "f.pdf"), "--receipt", str(tmp_path / "r.json"), "--trust", str(trust)]
    root = Path(__file__).resolve().parent.parent
    no_gm = BLOCKER.replace('"urllib3"}', '"urllib3", "gmssl_pyx"}')

    def run(blocker: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", blocker, *argv], capture_output=True, text=True, timeout=60,
                              cwd=root)  # fmt: skip

    ok = run(BLOCKER, args)  # no server package, GmSSL installed
    assert ok.returncode == 0 and "有效 VALID" in ok.stderr, ok.stderr
    without = run(no_gm, args)
    assert without.returncode == 2 and without.stderr.count("\n") == 1, without.stderr
    assert "pip install 'sifa[gm]'" in without.stderr
    case = CASES["witnessed-valid"]  # a SHA-256 log's receipt: GmSSL never imported
    sha = run(no_gm, [str(CORPUS / case["file"]), "--receipt", str(CORPUS / "witnessed-valid.json"),
                      "--trust", str(CORPUS / case["trust"])])  # fmt: skip
    assert sha.returncode == 0, sha.stderr
