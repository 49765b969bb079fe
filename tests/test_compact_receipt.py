"""The compact receipt (docs/receipt.md, ledger/compact_receipt.py): the same proof as the JSON receipt,
nothing lost either way, verified exactly as the JSON is, hostile bytes refused in one line."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.disclosure import build_leaf, disclosures_for
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.compact_receipt import MAGIC, MAX_PROOF, from_compact, pack, to_compact
from ledger.cosignature import CosignatureSigner
from ledger.errors import MalformedReceiptError
from ledger.note import Ed25519Signer, add_signatures
from ledger.receipt import Receipt
from ledger.suite import SHA256_ED25519
from verifier.cli import main as sifa_verify

CORPUS = Path(__file__).parent / "vectors" / "receipts"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
ORIGIN = "sifa.court/1101-0105"


def _corpus_receipts() -> dict[str, Receipt]:
    out = {}
    for path in sorted(CORPUS.glob("*.json")):
        try:
            out[path.stem] = Receipt.from_json(path.read_bytes())
        except MalformedReceiptError:
            continue  # trust files, cases, the truncated and unknown-format receipts
    return out


RECEIPTS = _corpus_receipts()
EDITED = {"wrong-size", "edited-record-id", "edited-height", "edited-leaf-hash", "edited-time"}


@pytest.mark.parametrize("name", sorted(set(RECEIPTS) - EDITED))
def test_json_to_compact_and_back_loses_nothing(name: str) -> None:
    """Every receipt of the corpus whose terms are its bytes' (valid or not): the compact form reads
    back as the same receipt, and its JSON is the file's, byte for byte."""
    receipt = RECEIPTS[name]
    data = to_compact(receipt)
    assert data.startswith(MAGIC + b"\x01")
    assert from_compact(data) == receipt
    assert from_compact(data).to_json() == (CORPUS / f"{name}.json").read_text(encoding="utf-8")
    assert len(data) < len((CORPUS / f"{name}.json").read_bytes())


@pytest.mark.parametrize("name", sorted(EDITED))
def test_a_receipt_stating_other_terms_is_not_made_compact(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The compact form states no terms (it derives them): writing one from a receipt whose terms are
    not its bytes' would drop the claim unseen. Refused, exit 2, one line, nothing written."""
    with pytest.raises(MalformedReceiptError, match="cannot be made from this one"):
        to_compact(RECEIPTS[name])
    out = tmp_path / "r.bin"
    assert sifa_verify(["compact", str(CORPUS / f"{name}.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sifa-verify: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "json" in c))
def test_compact_verifies_exactly_as_its_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same checks, the same output (stdout and stderr), the same exit code as the JSON receipt."""
    case = CASES[name]
    common = [*([str(CORPUS / case["file"])] if case["file"] else []), "--trust",
              str(CORPUS / case.get("trust", "trust.json")), "--json"]  # fmt: skip
    code_json = sifa_verify(["--receipt", str(CORPUS / f"{case['json']}.json"), *common])
    seen_json = capsys.readouterr()
    code_bin = sifa_verify(["--receipt", str(CORPUS / case["receipt_file"]), *common])
    seen_bin = capsys.readouterr()
    assert code_bin == code_json == 0
    assert (seen_bin.out, seen_bin.err) == (seen_json.out, seen_json.err)
    deflate = None if "not-deflated" not in name else False
    assert (CORPUS / case["receipt_file"]).read_bytes() == to_compact(RECEIPTS[case["json"]], deflate=deflate)


def test_compact_and_expand_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = CORPUS / "v2-valid.json"
    small, back = tmp_path / "r.bin", tmp_path / "r.json"
    assert sifa_verify(["compact", str(source), "-o", str(small)]) == 0
    assert f"compact receipt of {small.stat().st_size} bytes" in capsys.readouterr().err
    assert sifa_verify(["expand", str(small), "-o", str(back)]) == 0
    assert back.read_bytes() == source.read_bytes()
    assert sifa_verify(["expand", str(small)]) == 0  # to stdout
    assert capsys.readouterr().out.encode() == source.read_bytes()
    for args in (["compact", str(small)], ["expand", str(source)], ["compact", str(tmp_path / "absent.json")],
                 ["compact", str(source), "-o", str(tmp_path / "no" / "dir.bin")]):  # fmt: skip
        assert sifa_verify(args) == 2, args
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert sifa_verify(["expand"]) == 2  # argparse's usage lines, as every subcommand's


def test_truncated_at_every_length_is_refused() -> None:
    data = (CORPUS / "compact-v2.bin").read_bytes()
    for n in range(len(data)):
        with pytest.raises(MalformedReceiptError):
            from_compact(data[:n])


@settings(max_examples=300, deadline=None)
@given(at=st.integers(min_value=0), xor=st.integers(min_value=1, max_value=255), extra=st.binary(max_size=8))
def test_altered_bytes_parse_or_are_refused_as_malformed(at: int, xor: int, extra: bytes) -> None:
    """Any byte changed, bytes inserted: a receipt (which verification then judges) or MalformedReceiptError,
    never another exception."""
    data = bytearray((CORPUS / "compact-timestamp.bin").read_bytes())
    data[at % len(data)] ^= xor
    for mutated in (bytes(data), bytes(data[: at % len(data)]) + extra + bytes(data[at % len(data) :])):
        with contextlib.suppress(MalformedReceiptError):
            from_compact(mutated)


def test_a_proof_of_a_million_hashes_is_refused_in_bounded_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The count byte says at most 255; a file carrying 10⁶ hashes after it is refused at the count,
    having allocated no more than the file. A file over 64 MiB is refused before it is read whole."""
    valid = (CORPUS / "compact-valid.bin").read_bytes()
    at = 7  # the proof's count byte (docs/receipt.md)
    huge = tmp_path / "million.bin"
    huge.write_bytes(valid[:at] + b"\xff" + bytes(32) * 10**6 + valid[at + 1 :])
    too_big = tmp_path / "too-big.bin"
    with too_big.open("wb") as f:
        f.write(valid)
        f.truncate(65 << 20)
    trust = str(CORPUS / "trust.json")
    for path, said in ((huge, f"255 hashes, more than {MAX_PROOF}"), (too_big, "is over 67108864 bytes")):
        tracemalloc.start()
        try:
            assert sifa_verify(["--receipt", str(path), "--trust", trust]) == 2
            assert sifa_verify(["compact", str(path)]) == 2
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * min(path.stat().st_size, 64 << 20) + (8 << 20), peak
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.splitlines()) == 2, err
        assert said in err.splitlines()[0], err


def test_disclosures_with_a_salt_not_canonical_base64_are_not_made_compact() -> None:
    receipt = RECEIPTS["v2-valid"]
    first = receipt.disclosures[0]  # type: ignore[index]
    odd = receipt.with_disclosures([{**first, "salt": first["salt"].rstrip("=")}])
    with pytest.raises(MalformedReceiptError, match="salt"):
        to_compact(odd)


def _receipt_at_a_billion_leaves(*, disclosed: bool = False) -> bytes:
    """A compact receipt as a node of 10⁹ leaves gives it: an evidence registration's sifa-leaf/2 (the
    body bench/operate.py submits, as the node records it), 30 proof hashes, the checkpoint signed by the
    log and three witnesses; with every disclosure (a clerk's receipt) or none (the public leaf)."""
    body = {"evidence_id": "0741107e1ba74034a983e7113d40e620", "sha256": hashlib.sha256(b"0").hexdigest(),
            "size": 1, "name": "证据0.pdf", "description": "",
            "submitter": {"kind": "natural", "role": "原告", "name": "张三"},
            "actor": "clerk:b174f1f9-72df-5e51-bd6a-661e32c91411", "role": "clerk"}  # fmt: skip
    dossier, secret = "0b5a3c2e-7d41-5f6a-9c8e-1d2f3a4b5c6d", bytes(32)
    leaf = build_leaf(origin=ORIGIN, seq=10**9 - 1, position=10**9, dossier=dossier, version=2,
                      type="EvidenceSubmitted", time="2026-11-22T08:30:00.000000Z",
                      prev=hashlib.sha256(b"prev").digest(), body=body, secret=secret)  # fmt: skip
    proof = [hashlib.sha256(b"%d" % i).digest() for i in range(30)]
    note = sign_checkpoint(Checkpoint(ORIGIN, 10**9, hashlib.sha256(b"root").digest()),
                           Ed25519Signer(ORIGIN, bytes(range(32))))  # fmt: skip
    witnesses = [CosignatureSigner(f"sifa.witness/110{i}-0200", bytes([0x40 + i]) * 32) for i in range(3)]
    note = add_signatures(note, [w.cosign(note.text, 1_795_000_000) for w in witnesses])
    shown = [d.to_json() for d in disclosures_for(body, secret=secret, dossier=dossier, version=2)]
    return pack(suite=SHA256_ED25519, leaf_index=10**9 - 1, leaf_data=leaf, inclusion_proof=proof,
                checkpoint=note.to_text(), disclosures=shown if disclosed else None)  # fmt: skip


@pytest.mark.parametrize("disclosed", [False, True])
def test_a_receipt_at_a_billion_leaves_is_within_2_5_kb_and_one_qr_code(disclosed: bool) -> None:
    """Issue 23's goal (≤ 2.5 KB with three cosignatures), with the public leaf alone and with a clerk's
    eight disclosures; one QR code of version 40-L (2,953 bytes), read back by a decoder we did not write."""
    data = _receipt_at_a_billion_leaves(disclosed=disclosed)
    receipt = from_compact(data)
    assert (receipt.tree_size, len(receipt.inclusion_proof)) == (10**9, 30)
    assert len(receipt.leaf_data) >= 1039  # as long as the node's leaf of this registration (seq 3), or longer
    assert receipt.checkpoint.count("\n— ") == 4 and len(receipt.disclosures or ()) == (8 if disclosed else 0)
    assert len(data) <= 2500, len(data)
    segno = pytest.importorskip("segno")
    zxingcpp = pytest.importorskip("zxingcpp")
    image = pytest.importorskip("PIL.Image")
    qr = segno.make_qr(data, error="L", boost_error=False)
    assert qr.version <= 40
    png = io.BytesIO()
    qr.save(png, kind="png", scale=2)
    png.seek(0)
    [read] = zxingcpp.read_barcodes(image.open(png))
    assert read.bytes == data


def test_the_json_of_the_same_receipt_is_over_the_goal() -> None:
    """Why the compact form exists: the JSON of the same receipt is well over 2.5 KB."""
    receipt = from_compact(_receipt_at_a_billion_leaves(disclosed=True))
    assert len(receipt.to_json().encode()) > 4000
    assert to_compact(receipt) == _receipt_at_a_billion_leaves(disclosed=True)


def test_a_gm_receipt_keeps_its_suite() -> None:
    """国密: suite code 2 (sm3/sm2); read back, the receipt names SM3/SM2, its 交易哈希 is the SM3 leaf
    hash, and it verifies against the SM2 log key as the JSON does."""
    from ledger.gm import SM2Signer
    from ledger.hashing import hasher_named
    from ledger.log import MerkleLog
    from ledger.receipt import verify_receipt
    from ledger.sqlite import SQLiteTreeStore

    sm3 = hasher_named("sm3")
    log = MerkleLog(SQLiteTreeStore(":memory:"), sm3)
    when = "2026-11-22T08:30:00.000000Z"
    log.append([json.dumps({"seq": i, "time": when}).encode() for i in range(5)])
    signer = SM2Signer("sifa.court/gm", bytes(31) + b"\x07")
    log.sign_checkpoint(signer)
    receipt = log.receipt(3, when)
    data = to_compact(receipt)
    assert data[5] == 2
    back = from_compact(data)
    assert back == receipt and (back.hash_algorithm, back.signature_algorithm) == ("sm3", "sm2")
    assert back.leaf_hash_hex == sm3.leaf(receipt.leaf_data).hex()
    assert verify_receipt(back, [signer.verifier]).terms == verify_receipt(receipt, [signer.verifier]).terms


def test_redact_a_compact_receipt_gives_a_compact_receipt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``sifa-verify redact`` keeps the form it is given: a compact receipt redacted to 文件名 is the
    compact form of the corpus's redacted JSON receipt, and verifies the same."""
    out = tmp_path / "r.bin"
    assert sifa_verify(["redact", str(CORPUS / "compact-v2.bin"), "--keep", "文件名", "-o", str(out)]) == 0
    assert out.read_bytes() == to_compact(RECEIPTS["v2-redacted"])
    assert "kept 1 of 8 disclosures" in capsys.readouterr().err
    trust = str(CORPUS / "trust.json")
    seen = []
    for receipt in (out, CORPUS / "v2-redacted.json"):
        assert sifa_verify([str(CORPUS / "evidence.txt"), "--receipt", str(receipt), "--trust", trust, "--json"]) == 0
        seen.append(capsys.readouterr())
    assert seen[0] == seen[1]
    assert sifa_verify(["redact", str(CORPUS / "compact-valid.bin"), "--keep", "文件名"]) == 2  # sifa-receipt/1
    assert "carries no disclosures" in capsys.readouterr().err


def test_a_receipt_that_never_ends_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """``--receipt /dev/zero`` (or any endless or huge file): at most 64 MiB is read, then exit 2 in one
    line. Before, the whole file was read first: a MemoryError (under this 1 GiB limit) or no end."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    for args in (["--receipt", "/dev/zero", "--trust", str(CORPUS / "trust.json")], ["compact", "/dev/zero"]):
        run = subprocess.run([sys.executable, "-m", "verifier.cli", *args], capture_output=True, text=True,
                             timeout=120, preexec_fn=limit, cwd=Path(__file__).parent.parent)  # fmt: skip
        assert run.returncode == 2, run.stderr
        assert run.stderr.splitlines() == [f"sifa-verify: receipt /dev/zero is over {64 << 20} bytes"], run.stderr


LONE = "\ud800"  # a lone surrogate: JSON's "\ud800" escape reads as one, UTF-8 cannot hold it


@pytest.mark.parametrize("where", ["path", "value", "parts"])
def test_a_lone_surrogate_is_refused_by_compact_not_a_traceback(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON receipt may escape a lone surrogate (\\ud800) into a disclosure's path or value, or an
    optional part: ``sifa-verify compact`` refuses it in one line (exit 2), writes nothing."""
    doc = json.loads((CORPUS / "v2-valid.json").read_text(encoding="utf-8"))
    if where == "parts":
        doc["timestamp"] = LONE
    else:
        doc["disclosures"][0][where] = LONE
    source, out = tmp_path / "r.json", tmp_path / "r.bin"
    source.write_text(json.dumps(doc), encoding="ascii")  # the surrogate as its escape
    with pytest.raises(MalformedReceiptError, match="surrogate"):
        to_compact(Receipt.from_json(source.read_bytes()))
    assert sifa_verify(["compact", str(source), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("value", [LONE, float("nan"), float("inf")])
def test_a_compact_receipt_with_a_value_json_cannot_write_is_refused(
    value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crafted compact receipt whose disclosure value is a lone surrogate (escaped) or NaN/Infinity:
    refused as malformed (``expand`` exits 2 in one line), never a traceback nor JSON that is not JSON."""
    receipt = RECEIPTS["v2-valid"]
    first = dict(receipt.disclosures[0])  # type: ignore[index]
    raw = pack(suite=SHA256_ED25519, leaf_index=receipt.leaf_index, leaf_data=receipt.leaf_data,
               inclusion_proof=receipt.inclusion_proof, checkpoint=receipt.checkpoint,
               disclosures=[{**first, "value": "@@"}], deflate=False)  # fmt: skip
    escaped = json.dumps(value).encode()  # '"\\ud800"', 'NaN', 'Infinity': what JSON reads back as the value
    at = raw.index(b'"@@"')
    crafted = raw[: at - 4] + len(escaped).to_bytes(4, "big") + escaped + raw[at + 4 :]
    with pytest.raises(MalformedReceiptError):
        from_compact(crafted)
    path = tmp_path / "r.bin"
    path.write_bytes(crafted)
    assert sifa_verify(["expand", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1, captured.err
