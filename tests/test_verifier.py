"""sifa-verify against the receipt corpus: one verdict per check, and the consistency command."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.commitment import DisclosureError
from evidence.disclosure import read_leaf, verify_disclosures
from ledger.checkpoint import open_checkpoint
from ledger.compact_receipt import MAGIC, from_compact
from ledger.cosignature import require_quorum
from ledger.errors import ReceiptMismatchError, VerificationError
from ledger.hashing import SHA256
from ledger.keys import KeyHistory, check_window, verify_history, windowed
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note
from ledger.proof import verify_inclusion
from ledger.receipt import Receipt, Verified, verify_receipt
from ledger.sqlite import SQLiteTreeStore
from ledger.timestamp import TimestampPart, verify_token
from ledger.trust import read_trust
from verifier.cli import beijing
from verifier.cli import main as sifa_verify

CORPUS = Path(__file__).parent / "vectors" / "receipts"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))


def _receipt_path(name: str) -> Path:
    case = CASES[name]
    return CORPUS / case.get("receipt_file", f"{case.get('receipt', name)}.json")


VALID_TERMS = json.loads((CORPUS / "valid.json").read_text(encoding="utf-8"))["terms"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI: the exit code, the failed check's code (and term), and what is printed:
    only values read from verified bytes (never the edited term, never a placeholder)."""
    case = CASES[name]
    args = [str(CORPUS / case["file"])] if case["file"] else []
    trust = CORPUS / case.get("trust", "trust.json")
    code = sifa_verify([*args, "--receipt", str(_receipt_path(name)), "--trust", str(trust), "--json"])
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
    assert [c.get("term") for c in failed] == ([case["term"]] if "term" in case else [None] * len(failed))
    assert [c.get("path") for c in failed] == ([case["path"]] if "path" in case else [None] * len(failed))
    valid_terms = _terms(case)
    verdict = err.splitlines()[-1]
    assert verdict.startswith("有效 VALID: " if code == 0 else "无效 INVALID: ")
    assert "?" not in verdict
    if "terms" in result:  # the leaf verified: every term printed is the one the verified bytes state
        assert result["terms"] == valid_terms
        assert f"存证编号 {valid_terms['存证编号']}" in verdict
        assert f"存证时间 {beijing(valid_terms['存证时间'])}" in verdict and "北京时间 (UTC+8)" in verdict
    else:  # nothing of the leaf verified: no term is printed as a fact
        assert code == 1 and "存证编号" not in verdict and "存证时间" not in verdict
    if "edited" in case:
        assert str(case["edited"]) not in out and str(case["edited"]) not in err
    if code == 0:
        assert result["log"] == "sifa.court/1101-0105" and result["item"] == "DocumentUploaded"
    if "terms_of" in case and code == 0:  # sifa-leaf/2: opened fields verified, the rest not disclosed
        receipt = json.loads((CORPUS / f"{case['json']}.json" if "json" in case else _receipt_path(name)).read_text())
        opened = {f["path"]: f.get("value") for f in result["fields"] if f["disclosed"]}
        assert opened == {d["path"]: d["value"] for d in receipt["disclosures"]}
        assert all(f"{f['path']}): 未披露 / not disclosed" in err for f in result["fields"] if not f["disclosed"])
    if case["code"] == "disclosure_mismatch":
        assert "fields" not in result  # nothing is shown as verified once a disclosure does not open


def _terms(case: dict[str, object]) -> dict[str, object]:
    terms: dict[str, object] = json.loads((CORPUS / f"{case.get('terms_of', 'valid')}.json").read_text("utf-8"))[
        "terms"
    ]
    return terms


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["exit"] != 2))
def test_corpus_case_through_the_library(name: str) -> None:
    """The same receipts through ``verify_receipt`` and ``require_quorum``: the same verdict."""
    case, raw = CASES[name], _receipt_path(name).read_bytes()
    if raw.startswith(MAGIC):
        receipt = from_compact(raw)
    else:
        receipt = Receipt.from_tlog_proof(raw) if raw.startswith(b"c2sp.org/") else Receipt.from_json(raw)
    trust = read_trust(CORPUS / case.get("trust", "trust.json"))

    def check() -> None:
        keys = [windowed(k) for k in trust.logs]
        if "key_history" in receipt.parts:  # followed from the pinned key (docs/keys.md)
            keys, _ = verify_history(trust.logs, KeyHistory.from_dict(receipt.parts["key_history"]))
        check_window(Note.from_text(receipt.checkpoint), keys)
        proved = verify_receipt(receipt, keys)
        assert proved.terms == _terms(case)
        if "timestamp" in receipt.parts and trust.tsa:  # docs/time.md, steps 1 to 3
            part = TimestampPart.from_dict(receipt.parts["timestamp"])
            stamped, note = open_checkpoint(part.checkpoint, keys)
            verify_inclusion(SHA256, 5, stamped.size, proved.leaf_hash, part.inclusion_proof, stamped.root_hash)
            verify_token(part.token, note.text, trust.tsa)
        require_quorum(Note.from_text(receipt.checkpoint), trust.witnesses, trust.quorum)

    if case["code"] in (None, "file_not_in_receipt", "disclosure_mismatch"):  # the file, the disclosures: not ledger's
        check()
        if receipt.disclosures is not None:  # evidence.disclosure checks them against the proved leaf
            view = read_leaf(receipt.leaf_data)
            if case["code"] == "disclosure_mismatch":
                with pytest.raises(DisclosureError) as mismatch:
                    verify_disclosures(view, receipt.disclosures)
                assert mismatch.value.detail["path"] == case["path"]
            else:
                assert set(verify_disclosures(view, receipt.disclosures)) <= set(view.commitments)
        return
    with pytest.raises(VerificationError) as caught:
        check()
    assert caught.value.code == case["code"]
    assert caught.value.detail.get("term") == case.get("term")


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "term" in c))
def test_edited_terms_through_the_library(name: str) -> None:
    case = CASES[name]
    seen = Verified()
    with pytest.raises(ReceiptMismatchError) as caught:
        verify_receipt(Receipt.from_json(_receipt_path(name).read_bytes()), read_trust(CORPUS / "trust.json").logs,
                       seen=seen)  # fmt: skip
    assert caught.value.detail == {"term": case["term"]}
    assert seen.receipt is not None and seen.receipt.terms == VALID_TERMS  # what did verify, before the failure


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


@pytest.mark.parametrize(
    "disclosures",
    [{"path": "name"}, [{"path": "name", "value": "x"}], [{"path": 1, "value": "x", "salt": "AA=="}], ["name"],
     [{"path": "name", "value": "x", "salt": "AA==", "extra": 1}]],
)  # fmt: skip
def test_a_malformed_disclosure_list_is_unreadable_input(disclosures: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Not a list of {path, value, salt} (path and salt texts): exit 2, one line, before any check."""
    doc = json.loads((CORPUS / "v2-valid.json").read_text("utf-8"))
    doc["disclosures"] = disclosures
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert sifa_verify(["--receipt", str(bad), "--trust", str(CORPUS / "trust.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sifa-verify: ") and err.count("\n") == 1 and "disclosures" in err


def test_a_bad_salt_or_a_disclosure_of_an_old_leaf_is_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A salt that is not 16 bytes of base64, a path the leaf lacks, a path twice, or any disclosure
    in a receipt of a sifa-leaf/1 leaf: exit 1, disclosure_mismatch naming the path."""
    v2 = json.loads((CORPUS / "v2-valid.json").read_text("utf-8"))
    name = next(d for d in v2["disclosures"] if d["path"] == "name")
    old = {**json.loads((CORPUS / "valid.json").read_text("utf-8")), "format": "sifa-receipt/2", "disclosures": [name]}
    for doc, path in (({**v2, "disclosures": [{**name, "salt": "AAAA"}]}, "name"),
                      ({**v2, "disclosures": [{**name, "path": "title"}]}, "title"),
                      ({**v2, "disclosures": [name, name]}, "name"), (old, "name")):  # fmt: skip
        receipt = tmp_path / "r.json"
        receipt.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        assert sifa_verify(["--receipt", str(receipt), "--trust", str(CORPUS / "trust.json"), "--json"]) == 1
        result = json.loads(capsys.readouterr().out)
        [failed] = [c for c in result["checks"] if not c["ok"]]
        assert (failed["code"], failed["path"]) == ("disclosure_mismatch", path) and "fields" not in result


def test_redact_keeps_what_is_named_and_the_result_verifies(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "r2.json"
    assert sifa_verify(["redact", str(CORPUS / "v2-valid.json"), "--keep", "文件名,doc_type", "--keep", "actor",
                        "-o", str(out)]) == 0  # fmt: skip
    assert sorted(d["path"] for d in json.loads(out.read_text("utf-8"))["disclosures"]) == ["actor", "doc_type", "name"]
    before = json.loads((CORPUS / "v2-valid.json").read_text("utf-8"))
    after = json.loads(out.read_text("utf-8"))
    assert {k: v for k, v in after.items() if k != "disclosures"} == {k: v for k, v in before.items()
                                                                       if k != "disclosures"}  # fmt: skip
    capsys.readouterr()
    assert (
        sifa_verify([str(CORPUS / "evidence.txt"), "--receipt", str(out), "--trust", str(CORPUS / "trust.json")]) == 0
    )
    shown = capsys.readouterr().err
    assert "文件格式 (media_type): 未披露 / not disclosed" in shown and "文件名 (name): " in shown
    # an old receipt has nothing to redact; a missing one is unreadable: exit 2, one line
    assert sifa_verify(["redact", str(CORPUS / "valid.json"), "--keep", "文件名"]) == 2
    assert sifa_verify(["redact", str(tmp_path / "none.json"), "--keep", "文件名"]) == 2
    assert sifa_verify(["redact"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "carries no disclosures" in err


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
    forked = json.loads(capsys.readouterr().out)
    assert [c["code"] for c in forked["checks"] if not c["ok"]] == ["consistency_proof_invalid"]
    assert forked["old"] == {"log": "sifa.court/1101-0105", "size": 100} and "new_size" not in forked
    assert sifa_verify(["consistency", str(tmp_path / "fork.txt"), str(tmp_path / "new.txt"), *common[:-1]]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "无效 INVALID: consistency failed (consistency_proof_invalid); verified the old checkpoint "
        "(sifa.court/1101-0105, size 100) is signed by a trusted key; the new checkpoint (sifa.court/1101-0105, "
        "size 1000) is signed by a trusted key"
    )
    (tmp_path / "p.json").write_text("[not json")
    assert sifa_verify(["consistency", str(tmp_path / "old.txt"), str(tmp_path / "new.txt"), *common]) == 2


def test_receipt_from_a_running_node_verifies_after_the_node_is_gone(tmp_path: Path) -> None:
    """The node runs as ``sifa serve`` in its own process; then it stops and its data dir is deleted."""
    import hashlib
    import os
    import shutil
    import subprocess
    import sys
    from urllib.parse import quote

    import httpx2

    from tests.nodes import init
    from tests.servers import free_port, wait_for_port

    data = tmp_path / "node"
    admin = {"Authorization": f"Bearer {init(data)}"}
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


def test_edited_recorded_at_is_refused_and_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 item 3: an edited 存证时间 once verified and was printed under VALID."""
    doc = json.loads((CORPUS / "valid.json").read_text(encoding="utf-8"))
    forged = "2027-01-01T00:00:00Z"
    doc["terms"]["存证时间"] = forged
    (tmp_path / "r.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    args = [str(CORPUS / "evidence.txt"), "--receipt", str(tmp_path / "r.json"), "--trust", str(CORPUS / "trust.json")]
    assert sifa_verify([*args, "--json"]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    failed = [c for c in result["checks"] if not c["ok"]]
    assert [(c["code"], c.get("term")) for c in failed] == [("receipt_mismatch", "存证时间")]
    assert forged not in out and forged not in err
    assert sifa_verify(args) == 1
    assert forged not in capsys.readouterr().err


@pytest.fixture(scope="module")
def dossier_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bytes, Path]]:
    """A transferred dossier's package (sqlite stack) and a trust file naming its log key."""
    from tests.dossier_fixtures import make_stack
    from tests.package_fixtures import package_bytes as _package
    from tests.package_fixtures import sample_dossier as _dossier

    root = tmp_path_factory.mktemp("dossier")
    low = make_stack("sqlite", root / "low")
    try:
        data = _package(low, _dossier(low))
    finally:
        low.close()
    trust = root / "trust.json"
    trust.write_text(json.dumps({"logs": [{"key": low.signer.verifier.vkey()}]}), encoding="utf-8")
    return data, trust


def _verify_dossier(
    data: bytes, trust: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, Any, str]:
    (tmp_path / "p.tar").write_bytes(data)
    code = sifa_verify(["--dossier", str(tmp_path / "p.tar"), "--trust", str(trust), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "?" not in err.splitlines()[-1]
    return code, json.loads(out), err.splitlines()[-1]


def test_dossier_verdict_prints_what_its_events_say(
    dossier_package: tuple[bytes, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bag-info is not signed: a case number edited there (tag manifest recomputed) is never printed."""
    from tests.package_fixtures import CASE
    from tests.package_fixtures import rebuild as _rebuild
    from tests.package_fixtures import tar_members as _members

    data, trust = dossier_package
    code, result, verdict = _verify_dossier(data, trust, tmp_path, capsys)
    assert code == 0 and result["case_number"] == CASE and result["court"] == "1101-0105"
    assert (result["events"], result["files"], result["files_verified"], result["tree_size"]) == (13, 5, 5, 13)
    assert verdict == f"有效 VALID: 卷宗 dossier {CASE} of court 1101-0105 (sifa.court/1101-0105, 区块高度 13), " \
                      "13 events proved, 5 files named"  # fmt: skip
    forged = "（2026）京0105民初999号"
    members = [(m, d.replace(CASE.encode(), forged.encode()) if m.name == "bag-info.txt" else d)
               for m, d in _members(data)]  # fmt: skip
    code, result, verdict = _verify_dossier(_rebuild(members), trust, tmp_path, capsys)
    assert code == 0 and result["case_number"] == CASE and forged not in verdict


def test_dossier_failure_prints_what_verified_before_it(
    dossier_package: tuple[bytes, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.package_fixtures import CASE
    from tests.package_fixtures import rebuild as _rebuild
    from tests.package_fixtures import tar_members as _members

    data, trust = dossier_package
    members = _members(data)
    last = max(n for n, (m, _) in enumerate(members) if m.name.startswith("data/"))
    flipped = members[last][1][:-1] + bytes([members[last][1][-1] ^ 1])
    code, result, verdict = _verify_dossier(_rebuild([*members[:last], (members[last][0], flipped)]), trust,
                                            tmp_path, capsys)  # fmt: skip
    assert code == 1 and result["files_verified"] == 4 and result["case_number"] == CASE
    assert verdict.startswith("无效 INVALID: package failed (package_invalid); verified 卷宗 dossier " + CASE)
    assert verdict.endswith("5 files named, 4 of them verified")
    assert [c["check"] for c in result["checks"] if c["ok"]] == ["bag", "checkpoint", "events", "files", "disclosures"]
    stranger = tmp_path / "stranger.json"
    stranger.write_text(
        json.dumps({"logs": [{"key": Ed25519Signer("sifa.court/1101-0105", bytes(32)).verifier.vkey()}]})
    )
    code, result, verdict = _verify_dossier(data, stranger, tmp_path, capsys)
    assert code == 1 and set(result) == {"valid", "checks"}
    assert verdict == "无效 INVALID: checkpoint failed (package_invalid); nothing verified"


def test_typed_results_keep_the_json_shape() -> None:
    """verifier/result.py: the --json object is valid, checks, then the facts, in the order they verified."""
    from ledger.errors import VerificationError
    from verifier.result import Check, VerifyResult

    result = VerifyResult()
    result.facts.update(log="sifa.court/1101-0105", tree_size=3)
    assert result.add(Check.passed("receipt", "fine"))
    exc = VerificationError("the 存证时间 differs", term="存证时间")
    assert not result.add(Check.failed("terms", exc))
    assert result.failed is not None and result.failed.check == "terms"
    assert list(result.to_json()) == ["valid", "checks", "log", "tree_size"]
    assert result.to_json()["checks"] == [
        {"check": "receipt", "ok": True, "code": None, "detail": "fine"},
        {"check": "terms", "ok": False, "code": exc.code, "detail": exc.diagnostics(), "term": "存证时间"},
    ]


DEEP = "[" * 100000  # json.loads recursed once per level: RecursionError, a traceback


def _deep_members(data: bytes, part: str) -> bytes:
    """A package with one part nested ``DEEP``: the whole events line, the leaf inside it, disclosures."""
    from evidence.package import DISCLOSURES, EVENTS
    from tests.test_package import _members, _rebuild

    members = []
    for m, d in _members(data):
        if m.name == EVENTS and part == "line":
            d = (DEEP + "\n").encode()
        elif m.name == EVENTS and part == "leaf":
            first, rest = d.split(b"\n", 1)
            d = json.dumps({**json.loads(first), "leaf": DEEP}).encode() + b"\n" + rest
        elif m.name == DISCLOSURES and part == "disclosures":
            d = DEEP.encode()
        members.append((m, d))
    return _rebuild(members)


@pytest.mark.parametrize("part", ["line", "leaf", "disclosures"])
def test_deeply_nested_package_json_is_refused_in_one_line(
    part: str, dossier_package: tuple[bytes, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, trust = dossier_package
    code, result, verdict = _verify_dossier(_deep_members(data, part), trust, tmp_path, capsys)
    assert code == 1 and "nested deeper than 64 levels" in verdict + json.dumps(result, ensure_ascii=False)
    assert [c["code"] for c in result["checks"] if not c["ok"]] == ["package_invalid"]


def test_deeply_nested_json_inputs_exit_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    valid, trust = CORPUS / "valid.json", CORPUS / "trust.json"
    nested_extra = tmp_path / "extra.json"
    nested_extra.write_text(json.dumps({**json.loads(valid.read_text(encoding="utf-8"))})[:-1] + ', "x": ' + DEEP)
    signer = Ed25519Signer("sifa.court/1101-0105", bytes(range(32)))
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    log.append([b"a", b"b"])
    (tmp_path / "cp.txt").write_text(log.sign_checkpoint(signer).to_text(), encoding="utf-8")
    (tmp_path / "t.json").write_text(json.dumps({"logs": [{"key": signer.verifier.vkey()}]}))
    cp, t = str(tmp_path / "cp.txt"), str(tmp_path / "t.json")
    for args in (["--receipt", str(deep), "--trust", str(trust)],
                 ["--receipt", str(nested_extra), "--trust", str(trust)],
                 ["--receipt", str(valid), "--trust", str(deep)],
                 ["consistency", cp, cp, "--proof", str(deep), "--trust", t]):  # fmt: skip
        assert sifa_verify(args) == 2, args
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.splitlines()) == 1 and "deeper than 64" in err, err


def test_bounded_json_reader() -> None:
    from ledger import boundedjson

    assert boundedjson.loads("[" * 64 + "]" * 64) is not None
    assert boundedjson.loads('["' + "[" * 1000 + '"]') == ["[" * 1000]  # brackets in a string do not nest
    assert boundedjson.loads(b'{"a": "\\"[["}') == {"a": '"[['}
    for bad in ("[" * 65 + "]" * 65, '{"a":' * 65 + "1" + "}" * 65, DEEP):
        with pytest.raises(ValueError, match="nested deeper than 64"):
            boundedjson.loads(bad)
    with pytest.raises(ValueError, match="over 10 bytes"):
        boundedjson.loads("[1, 2, 3, 4]", max_bytes=10)
    with pytest.raises(ValueError):  # an unterminated string full of escaped quotes: no backtracking, refused
        boundedjson.loads('"' + '\\"' * 100000 + "[" * 100)


def test_a_trust_file_with_keys_of_two_suites_for_one_log_is_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Ed25519 and an SM2 key for one origin left the log's tree hash undecided: a MalformedNoteError
    traceback from ``consistency``, a malformed_note verdict with exit 1 from a receipt."""
    from ledger.gm import SM2Signer
    from ledger.trust import MalformedTrustError, parse_trust

    origin = "sifa.court/1101-0105"
    ed, sm2 = Ed25519Signer(origin, bytes(range(32))), SM2Signer(origin, bytes(range(1, 33)))
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    log.append([b"a", b"b"])
    (tmp_path / "cp.txt").write_text(log.sign_checkpoint(ed).to_text(), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps({"proof": []}))
    for keys in ([ed, sm2], [sm2, ed]):
        doc = {"logs": [{"key": k.verifier.vkey()} for k in keys]}
        with pytest.raises(MalformedTrustError, match="two crypto suites"):
            parse_trust(doc)
        (tmp_path / "t.json").write_text(json.dumps(doc))
        cp, t = str(tmp_path / "cp.txt"), str(tmp_path / "t.json")
        for args in (["consistency", cp, cp, "--proof", str(tmp_path / "p.json"), "--trust", t],
                     ["--receipt", str(CORPUS / "valid.json"), "--trust", t]):  # fmt: skip
            assert sifa_verify(args) == 2, args
            err = capsys.readouterr().err
            assert "Traceback" not in err and err.count("\n") == 1 and "two crypto suites" in err, err


@pytest.mark.parametrize("to_stdout", [True, False])
def test_redact_a_receipt_holding_a_lone_surrogate_is_refused_in_one_line(
    to_stdout: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON receipt may escape a lone surrogate (\\ud800) into a disclosure's value: ``redact`` keeping it
    cannot write it as UTF-8, so it exits 2 in one line and writes nothing (it crashed with a traceback)."""
    doc = json.loads((CORPUS / "v2-valid.json").read_text("utf-8"))
    [actor] = [d for d in doc["disclosures"] if d["path"] == "actor"]
    actor["value"] = "\ud800"
    source, out = tmp_path / "r.json", tmp_path / "r2.json"
    source.write_text(json.dumps(doc), encoding="ascii")
    assert sifa_verify(["redact", str(source), "--keep", "actor", *([] if to_stdout else ["-o", str(out)])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1, captured.err
