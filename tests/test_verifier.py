"""sifa-verify against the receipt corpus: one verdict per check, and the consistency command."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.receipt import Receipt
from ledger.sqlite import SQLiteTreeStore
from verifier.cli import main as sifa_verify

CORPUS = Path(__file__).parent / "vectors" / "receipts"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    args = [str(CORPUS / case["file"])] if case["file"] else []
    receipt = CORPUS / case.get("receipt_file", f"{case.get('receipt', name)}.json")
    trust = CORPUS / case.get("trust", "trust.json")
    code = sifa_verify([*args, "--receipt", str(receipt), "--trust", str(trust), "--json"])
    out, err = capsys.readouterr()
    assert code == case["exit"], err
    assert "Traceback" not in err
    if code == 2:
        assert out == "" and err.startswith("sifa-verify: ") and err.count("\n") == 1
        return
    result = json.loads(out)
    assert result["valid"] is (code == 0)
    failed = [c for c in result["checks"] if not c["ok"]]
    assert [c["code"] for c in failed] == ([case["code"]] if case["code"] else [])
    assert "存证编号" in err and "sifa.court/1101-0105#" in err


def test_corpus_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import make_receipt_vectors

    monkeypatch.setattr(make_receipt_vectors, "OUT", tmp_path)
    make_receipt_vectors.main()
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (CORPUS / path.name).read_bytes(), path.name


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert sifa_verify([]) == 2
    assert sifa_verify(["--receipt", "x.json"]) == 2
    assert sifa_verify(["--receipt", str(CORPUS / "valid.json"), "--trust", "/nonexistent.json"]) == 2
    assert sifa_verify([str(CORPUS / "nope.pdf"), "--receipt", str(CORPUS / "valid.json"),
                        "--trust", str(CORPUS / "trust.json")]) == 2  # fmt: skip
    assert "Traceback" not in capsys.readouterr().err


def test_consistency_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signer = Ed25519Signer("sifa.court/1101-0105", bytes(range(32)))
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    log.append([b"%d" % i for i in range(100)])
    (tmp_path / "old.txt").write_text(log.sign_checkpoint(signer).to_text(), encoding="utf-8")
    log.append([b"%d" % i for i in range(100, 1000)])
    (tmp_path / "new.txt").write_text(log.sign_checkpoint(signer).to_text(), encoding="utf-8")
    proof = [base64.b64encode(h).decode() for h in log.consistency_proof(100, 1000)]
    (tmp_path / "p.json").write_text(json.dumps({"proof": proof}))
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"key": signer.verifier.vkey()}]}))
    common = ["--proof", str(tmp_path / "p.json"), "--trust", str(tmp_path / "t.json"), "--json"]
    assert sifa_verify(["consistency", str(tmp_path / "old.txt"), str(tmp_path / "new.txt"), *common]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    # A rewritten history: the "old" checkpoint of another tree of size 100 is not extended by the new one.
    fork = MerkleLog(SQLiteTreeStore(":memory:"))
    fork.append([b"forged %d" % i for i in range(100)])
    (tmp_path / "fork.txt").write_text(fork.sign_checkpoint(signer).to_text(), encoding="utf-8")
    assert sifa_verify(["consistency", str(tmp_path / "fork.txt"), str(tmp_path / "new.txt"), *common]) == 1
    failed = json.loads(capsys.readouterr().out)["checks"][0]
    assert failed["code"] == "consistency_proof_invalid"
    (tmp_path / "p.json").write_text("[not json")
    assert sifa_verify(["consistency", str(tmp_path / "old.txt"), str(tmp_path / "new.txt"), *common]) == 2


def test_receipt_from_a_running_node_verifies_after_the_node_is_gone(tmp_path: Path) -> None:
    """The node runs as ``sifa serve`` in its own process; then it stops and its data dir is deleted."""
    import contextlib
    import hashlib
    import io
    import os
    import shutil
    import subprocess
    import sys
    from urllib.parse import quote

    import httpx2

    from api.cli import main as sifa
    from tests.servers import free_port, wait_for_port

    data = tmp_path / "node"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    admin = {"Authorization": f"Bearer {out.getvalue().strip()}"}
    port = free_port()
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    document = "（2026）京0105民初5号 判决书\n".encode() * 100
    try:
        wait_for_port(port)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            issued = http.post("/v1/principals", headers=admin, json={"name": "书记员", "role": "clerk"})
            clerk = {"Authorization": "Bearer " + issued.json()["token"]}
            opened = http.post("/v1/dossiers", headers=clerk,
                               json={"case_number": "（2026）京0105民初5号", "case_type": "民事"})  # fmt: skip
            d = opened.json()["dossier"]
            headers = {**clerk, "X-File-Name": quote("判决书.txt"), "Content-Type": "text/plain"}
            up = http.post(f"/v1/dossiers/{d}/documents", content=document, headers=headers)
            assert up.status_code == 201, up.text
            receipt = http.get(f"/v1/dossiers/{d}/receipts/2", headers=clerk).json()
            key = http.get("/v1/log/key").json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shutil.rmtree(data)
    (tmp_path / "r.json").write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"key": key["verifier_key"]}]}), encoding="utf-8")
    (tmp_path / "判决书.txt").write_bytes(document)
    assert hashlib.sha256(document).hexdigest() == up.json()["sha256"]
    args = ["--receipt", str(tmp_path / "r.json"), "--trust", str(tmp_path / "t.json")]
    assert sifa_verify([str(tmp_path / "判决书.txt"), *args]) == 0
    (tmp_path / "判决书.txt").write_bytes(document[:-1] + b"!")
    assert sifa_verify([str(tmp_path / "判决书.txt"), *args]) == 1


BLOCKER = """
import importlib.abc, runpy, sys
SERVER = {"fastapi", "starlette", "uvicorn", "eventsourcing", "minio", "psycopg", "psycopg_pool", "pydantic",
          "pydantic_settings", "cryptography", "rfc8785", "pypdf", "pymerkle", "httptools", "uvloop", "urllib3"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER:
            raise ImportError(f"{name} is a server package")
sys.meta_path.insert(0, Block())
sys.argv = ["sifa-verify", *sys.argv[1:]]
runpy.run_module("verifier.cli", run_name="__main__")
"""


def test_the_verifier_needs_none_of_the_server_packages() -> None:
    """What `pip install .` without the server extra gives a lawyer: sifa-verify still works."""
    case = CASES["witnessed-valid"]
    args = [str(CORPUS / case["file"]), "--receipt", str(CORPUS / "witnessed-valid.json"),
            "--trust", str(CORPUS / case["trust"])]  # fmt: skip
    run = subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "有效 VALID" in run.stderr
    with_server = subprocess.run([sys.executable, "-c", BLOCKER.replace("verifier.cli", "api.cli"), "--help"],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "is a server package" in with_server.stderr  # the blocker does block
    node = subprocess.run([sys.executable, "-c", BLOCKER.replace("verifier.cli", "api.entry"), "--help"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert node.returncode == 2 and node.stderr.count("\n") == 1 and "pip install 'sifa[server]'" in node.stderr


def test_tlog_proof_is_the_c2sp_text_and_carries_the_same_receipt() -> None:
    text = (CORPUS / "valid.tlog-proof").read_text(encoding="utf-8")
    lines = text.split("\n")
    # SPEC c2sp.org/tlog-proof: the header, "extra <base64>", "index <n>", the proof hashes, an empty line,
    # then the checkpoint verbatim.
    assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[1].startswith("extra ") and lines[2] == "index 5"
    blank = lines.index("")
    assert all(len(base64.b64decode(h, validate=True)) == 32 for h in lines[3:blank])
    receipt = json.loads((CORPUS / "valid.json").read_text(encoding="utf-8"))
    assert "\n".join(lines[blank + 1 :]) == receipt["checkpoint"]
    assert lines[3:blank] == receipt["inclusion_proof"]
    assert base64.b64decode(lines[1][6:]) == base64.b64decode(receipt["leaf_data"])
    assert Receipt.from_tlog_proof(text).to_dict() == receipt
