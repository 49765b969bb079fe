"""Trusted time (RFC 3161, docs/time.md): a real TSA on 127.0.0.1 (``openssl ts -reply``), the
sequencer's stamping beside it, tokens in receipts, and the verifier's check of them."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.tsa import Stamping
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note
from ledger.receipt import Receipt
from ledger.timestamp import MalformedTimestampError, TimestampError, token_from_response, verify_token
from tests.nodes import run_verify
from tests.tsa import TestTSA

ORIGIN = "sifa.court/1101-0105"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestTSA]:
    server = TestTSA.start(tmp_path_factory.mktemp("tsa"))
    yield server
    server.stop()


def leaf(i: int, when: str = "2026-12-01T08:00:00Z") -> bytes:
    return json.dumps(
        {"type": "DocumentUploaded", "seq": i, "time": when, "名称": "起诉状"}, ensure_ascii=False
    ).encode()


def grow(merkle: MerkleLog, signer: Ed25519Signer, n: int, when: str = "2026-12-01T08:00:00Z") -> None:
    start = merkle.size
    merkle.append([leaf(start + i, when) for i in range(n)], signer=signer)


def trust_file(path: Path, signer: Ed25519Signer, tsa_pems: list[str]) -> Path:
    doc: dict[str, Any] = {"format": "sifa-trust/1", "logs": [{"key": signer.verifier.vkey()}],
                           "tsa": [{"name": "测试 TSA", "certificate": pem} for pem in tsa_pems]}  # fmt: skip
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_token_per_new_checkpoint_at_most_one_and_a_down_tsa_is_passed_over(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer
) -> None:
    stamping = Stamping(merkle, ["http://127.0.0.1:9/down", tsa.url], timeout=2)
    assert stamping.round() is None  # an empty log: nothing to stamp
    grow(merkle, signer, 3)
    before = tsa.requests
    assert stamping.round() == 3  # the first TSA is down: the second one answers
    assert stamping.round() is None  # at most one token per checkpoint
    assert tsa.requests == before + 1
    [(size, token)] = merkle.store.timestamps()
    body = Note.from_text(merkle.store.checkpoint(3)[1]).text  # type: ignore[index]
    assert size == 3 and verify_token(token, body, [tsa.ca_pem]).time.tzinfo is not None
    # The token is RFC 3161 as OpenSSL reads it, not only as sifa does.
    checked = tsa.openssl_verify(token, body.encode())
    assert checked.returncode == 0 and b"Verification: OK" in checked.stdout, checked.stderr


def test_a_tsa_that_is_down_never_blocks_sealing(tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer) -> None:
    stamping = Stamping(merkle, [tsa.url], timeout=2)
    tsa.available = False
    try:
        grow(merkle, signer, 2)
        assert stamping.round() is None and merkle.size == 2
        grow(merkle, signer, 1)  # the log goes on
        assert merkle.store.timestamps() == []
    finally:
        tsa.available = True
    assert stamping.round() == 3  # back up: the latest checkpoint is stamped


def test_the_stamping_thread_stamps_while_the_log_grows(tsa: TestTSA, merkle: MerkleLog,
                                                        signer: Ed25519Signer) -> None:  # fmt: skip
    stop = threading.Event()
    stamping = Stamping(merkle, [tsa.url], timeout=2)
    grow(merkle, signer, 1)
    thread = threading.Thread(target=stamping.run, args=(stop, 0.2))
    thread.start()
    try:
        for _ in range(50):
            if merkle.store.timestamps():
                break
            stop.wait(0.05)
        grow(merkle, signer, 2)
        for _ in range(100):
            if len(merkle.store.timestamps()) >= 2:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
    sizes = [size for size, _ in merkle.store.timestamps()]
    assert sizes == [1, 3]


def stamped_receipt(tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer) -> Receipt:
    grow(merkle, signer, 4)
    assert Stamping(merkle, [tsa.url]).round() == 4
    grow(merkle, signer, 3)  # a later checkpoint, signed but not stamped: the receipt's own
    receipt = merkle.receipt(2, recorded_at="2026-12-01T08:00:00Z")
    assert receipt.tree_size == 7 and "timestamp" in receipt.parts
    return receipt


def test_a_receipt_carries_its_token_and_the_verifier_prints_the_trusted_time(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    assert Receipt.from_json(receipt.to_json()) == receipt  # the part round-trips
    code, result, err = run_verify(tmp_path, receipt, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 0, err
    stamped = result["trusted_time"]
    assert stamped["tree_size"] == 4 and stamped["beijing"].endswith("北京时间") and "Test TSA" in stamped["tsa"]
    assert [c["check"] for c in result["checks"]] == ["receipt", "trusted_time"]
    assert "可信时间 trusted time" in err.splitlines()[-1] and stamped["beijing"] in err


def test_without_a_tsa_in_the_trust_file_the_time_is_reported_not_checked(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    code, result, err = run_verify(tmp_path, receipt, trust_file(tmp_path / "t.json", signer, []), capsys)
    assert code == 0 and "trusted_time" not in result
    assert result["not_checked"][0]["check"] == "trusted_time" and "未核验 not checked" in err
    assert "可信时间" not in err.splitlines()[-1]


def _tampered(receipt: Receipt, **changes: Any) -> dict[str, Any]:
    doc = receipt.to_dict()
    doc["timestamp"] = {**doc["timestamp"], **changes}
    return doc


def test_a_token_for_another_checkpoint_is_invalid(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    assert Stamping(merkle, [tsa.url]).round() == 7
    [(_, other)] = merkle.store.timestamps(above=4)
    doc = _tampered(receipt, token=base64.b64encode(other).decode())
    code, result, _err = run_verify(tmp_path, doc, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 1 and result["checks"][-1]["code"] == "timestamp_invalid"
    assert "another message" in result["checks"][-1]["detail"] and "trusted_time" not in result


def test_a_token_from_a_tsa_the_trust_file_does_not_name_is_not_checked(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup TSA the lawyer's trust file does not name: its time cannot be judged here, so it is
    reported not checked (never shown as verified); the receipt's own checks still decide."""
    receipt = stamped_receipt(tsa, merkle, signer)
    stranger = TestTSA.start(tmp_path / "stranger")
    try:
        trust = trust_file(tmp_path / "t.json", signer, [stranger.ca_pem])
    finally:
        stranger.stop()
    code, result, err = run_verify(tmp_path, receipt, trust, capsys)
    assert code == 0 and "trusted_time" not in result
    assert result["not_checked"][0]["check"] == "trusted_time"
    assert (
        "does not name" in result["not_checked"][0]["detail"] and "does not chain" in result["not_checked"][0]["detail"]
    )
    assert "未核验 not checked" in err


def test_a_flipped_bit_in_the_token_is_invalid(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    token = bytearray(base64.b64decode(receipt.parts["timestamp"]["token"]))
    token[-5] ^= 1  # inside the signature
    doc = _tampered(receipt, token=base64.b64encode(bytes(token)).decode())
    code, result, _ = run_verify(tmp_path, doc, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 1 and result["checks"][-1]["code"] in ("timestamp_invalid", "malformed_timestamp")


def test_a_stamped_checkpoint_that_does_not_hold_the_leaf_is_invalid(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    proof = receipt.parts["timestamp"]["inclusion_proof"]
    doc = _tampered(receipt, inclusion_proof=proof[::-1])
    code, result, _ = run_verify(tmp_path, doc, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 1 and result["checks"][-1]["code"] == "inclusion_proof_invalid"


def test_a_leaf_time_after_the_tsa_time_is_invalid(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(merkle, signer, 2, when="2099-01-01T00:00:00Z")  # the court's clock claims a time the TSA had not seen
    assert Stamping(merkle, [tsa.url]).round() == 2
    receipt = merkle.receipt(1, recorded_at="2099-01-01T00:00:00Z")
    code, result, _ = run_verify(tmp_path, receipt, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 1 and result["checks"][-1]["code"] == "timestamp_invalid"
    assert "after the TSA's time" in result["checks"][-1]["detail"]


def test_a_malformed_timestamp_part_is_an_input_error(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = stamped_receipt(tsa, merkle, signer)
    doc = _tampered(receipt, token="not base64!")
    code, _, err = run_verify(tmp_path, doc, trust_file(tmp_path / "t.json", signer, [tsa.ca_pem]), capsys)
    assert code == 2 and err.startswith("sifa-verify: ") and "timestamp" in err


def test_a_tsa_answer_that_grants_nothing_is_malformed() -> None:
    # TimeStampResp with status rejection (2) and no token: SEQUENCE { SEQUENCE { INTEGER 2 } }
    with pytest.raises(MalformedTimestampError):
        token_from_response(bytes.fromhex("3005300302 0102".replace(" ", "")))
    with pytest.raises(MalformedTimestampError):
        token_from_response(b"\x00garbage")


def test_verify_token_refuses_garbage() -> None:
    with pytest.raises((TimestampError, MalformedTimestampError)):
        verify_token(b"\x30\x03\x02\x01\x01", "x\n", [])


def test_a_node_stamps_its_checkpoints_and_serves_the_tokens(tsa: TestTSA, tmp_path: Path) -> None:
    """SIFA_TSA_URLS wired: the node's sequencer thread stamps; GET /v1/log/timestamp serves the token."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.cli import main as sifa
    from api.node import load_signer, open_tree_store
    from api.settings import Settings

    data = tmp_path / "node"
    assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    store = open_tree_store(data, "")
    MerkleLog(store).append([leaf(i) for i in range(5)], signer=load_signer(data))
    store.close()
    settings = Settings(data_dir=data, sequencer="thread", tsa_urls=f"http://127.0.0.1:9/down, {tsa.url}",
                        tsa_interval_seconds=0.2)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/log/timestamp", params={"size": 6}).status_code == 404
        for _ in range(100):
            answer = client.get("/v1/log/timestamp")
            if answer.status_code == 200:
                break
            threading.Event().wait(0.05)
        assert answer.status_code == 200, answer.text
        doc = answer.json()
    assert doc["size"] == 5
    body = Note.from_text(doc["checkpoint"]).text
    assert tsa.openssl_verify(base64.b64decode(doc["token"]), body.encode()).returncode == 0


def test_a_flipped_byte_is_refused_where_it_is_signed_and_never_a_crash(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer
) -> None:
    """Every byte of the stamped statement (TSTInfo) and of the signature; every fifth byte elsewhere
    (certificates the token carries but the check does not rely on may change: no crash, that is all)."""
    from asn1crypto import cms

    grow(merkle, signer, 1)
    assert Stamping(merkle, [tsa.url]).round() == 1
    [(_, token)] = merkle.store.timestamps()
    body = Note.from_text(merkle.store.checkpoint(1)[1]).text  # type: ignore[index]
    signed = cms.ContentInfo.load(token)["content"]
    covered = set()
    info = signed["signer_infos"][0]
    for part in (signed["encap_content_info"]["content"].contents, info["signed_attrs"].contents,
                 info["signature"].native):  # fmt: skip
        at = token.find(part)
        covered |= set(range(at, at + len(part)))
    for i in sorted(covered | set(range(0, len(token), 5))):
        bad = bytearray(token)
        bad[i] ^= 0x01
        try:
            verify_token(bytes(bad), body, [tsa.ca_pem])
        except (TimestampError, MalformedTimestampError):
            continue
        assert i not in covered, f"byte {i} of the signed statement or signature changed, and the token verified"


def test_a_token_for_another_message_is_not_kept(tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer) -> None:
    """A TSA that stamps something else (same nonce, another imprint): no token is kept for the checkpoint."""
    from asn1crypto import tsp

    def other_imprint(query: bytes) -> bytes:
        req = tsp.TimeStampReq.load(query)
        return tsp.TimeStampReq({
            "version": 1, "nonce": req["nonce"].native, "cert_req": True,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 32},
        }).dump()  # fmt: skip

    grow(merkle, signer, 1)
    tsa.rewrite = other_imprint
    try:
        assert Stamping(merkle, [tsa.url]).round() is None
    finally:
        tsa.rewrite = None
    assert merkle.store.timestamps() == []
    assert Stamping(merkle, [tsa.url]).round() == 1


def _issued(subject: str, issuer: Any, issuer_key: Any, key: Any, *, ca: bool, path_length: int | None = None,
            eku: list[Any] | None = None, eku_critical: bool = True, cert_sign: bool = True) -> Any:  # fmt: skip
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from tests.tsa import _name

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )  # fmt: skip
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, cert_sign, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.mark.parametrize("case", ["end_entity_issuer", "path_length", "no_cert_sign", "eku_not_critical",
                                  "eku_not_sole", "honest"])  # fmt: skip
def test_the_tsa_chain_holds_only_cas_and_a_timestamping_only_certificate(
    tmp_path: Path, merkle: MerkleLog, signer: Ed25519Signer, case: str
) -> None:
    """An end-entity certificate the trusted CA issued to a customer cannot mint a TSA (basicConstraints);
    a CA's path length and keyCertSign hold; the TSA's EKU is critical and timeStamping alone (RFC
    3161 section 2.3). ``openssl ts -verify`` agrees on each."""
    import subprocess

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID as EKU

    from ledger.timestamp import request, timestamping_only
    from tests.tsa import CONFIG, _pem, make_ca

    stamp = [EKU.TIME_STAMPING]
    root, root_key = make_ca("Licensed CA Root")  # path length 1
    mid_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    chain: list[Any] = []
    if case == "end_entity_issuer":
        mid = _issued("some-customer.example", root, root_key, mid_key, ca=False, eku=[EKU.SERVER_AUTH])
        chain, issuer, issuer_key = [mid], mid, mid_key
    elif case in ("path_length", "no_cert_sign"):
        mid = _issued("Sub CA", root, root_key, mid_key, ca=True, path_length=None if case == "no_cert_sign" else 0,
                      cert_sign=case != "no_cert_sign")  # fmt: skip
        chain, issuer, issuer_key = [mid], mid, mid_key
        if case == "path_length":  # root allows 1 CA below it, Sub CA allows 0: a third CA breaks it
            low_key = ec.generate_private_key(ec.SECP256R1())
            low = _issued("Sub-sub CA", mid, mid_key, low_key, ca=True)
            chain, issuer, issuer_key = [low, mid], low, low_key
    else:
        issuer, issuer_key = root, root_key
    tsa_cert = _issued("TSA", issuer, issuer_key, tsa_key, ca=False,
                       eku=stamp + ([EKU.SERVER_AUTH] if case == "eku_not_sole" else []),
                       eku_critical=case != "eku_not_critical")  # fmt: skip
    (tmp_path / "tsa.pem").write_text(_pem(tsa_cert))
    (tmp_path / "chain.pem").write_text("".join(_pem(c) for c in chain) or _pem(root))
    (tmp_path / "ca.pem").write_text(_pem(root))
    pkcs8 = serialization.PrivateFormat.PKCS8
    (tmp_path / "tsa.key").write_bytes(tsa_key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                                             serialization.NoEncryption()))  # fmt: skip
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(CONFIG.format(dir=tmp_path))
    grow(merkle, signer, 2)
    note = Note.from_text(merkle.receipt(0, "2026-12-01T08:00:00Z").checkpoint)
    query, nonce = request(note.text)
    (tmp_path / "q.der").write_bytes(query)
    reply = subprocess.run(["openssl", "ts", "-reply", "-config", str(tmp_path / "tsa.cnf"), "-queryfile",
                            str(tmp_path / "q.der"), "-out", str(tmp_path / "r.der")], capture_output=True)  # fmt: skip
    if case.startswith("eku_"):  # OpenSSL will not even sign with such a certificate; sifa refuses it too
        assert reply.returncode != 0
        with pytest.raises(TimestampError, match="timestamping only"):
            timestamping_only(tsa_cert)
        return
    token = token_from_response((tmp_path / "r.der").read_bytes(), nonce, note.text)
    (tmp_path / "body.txt").write_text(note.text)
    openssl = subprocess.run(["openssl", "ts", "-verify", "-in", str(tmp_path / "r.der"), "-data",
                              str(tmp_path / "body.txt"), "-CAfile", str(tmp_path / "ca.pem"), "-untrusted",
                              str(tmp_path / "chain.pem")], capture_output=True, text=True)  # fmt: skip
    if case == "honest":
        assert openssl.returncode == 0, openssl.stderr
        assert verify_token(token, note.text, [_pem(root)]).tsa
        return
    assert openssl.returncode != 0, case
    with pytest.raises(TimestampError):
        verify_token(token, note.text, [_pem(root)])


def test_a_tsa_that_drips_its_answer_is_given_up_on_and_the_next_one_asked(
    tsa: TestTSA, merkle: MerkleLog, signer: Ed25519Signer
) -> None:
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Drip(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(60):
                    self.wfile.write(b"0")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        grow(merkle, signer, 2)
        stamping = Stamping(merkle, [f"http://127.0.0.1:{server.server_address[1]}/tsa", tsa.url], timeout=2)
        started = time.monotonic()
        assert stamping.round() == 2  # the second TSA's token
        assert time.monotonic() - started < 8
    finally:
        server.shutdown()
        server.server_close()
