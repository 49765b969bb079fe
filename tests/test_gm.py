"""国密 in the cryptographic core: SM3 tree hashing and SM2 signed notes, against code sifa did not write.

SM3 against the GB/T 32905 examples (standard library, GmSSL and the ``openssl`` command line);
SM2 against the GB/T 32918.5 Annex A example and against ``openssl`` both ways (distid
1234567812345678); RFC 9162 proofs over SM3 from a real SQLite tree store against a recursive
SM3 reference; SM2-signed checkpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import gm
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import (
    CheckpointSignatureError,
    ConsistencyProofError,
    InclusionProofError,
    MalformedNoteError,
    UnknownKeyError,
)
from ledger.gm import SM2Signer, SM2Verifier, der_signature, raw_signature
from ledger.hashing import SHA256, SM3Hasher, hasher_named, hasher_names
from ledger.log import MerkleLog
from ledger.note import (
    SM2_SM3,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    key_id,
    signer_from_skey,
    verifier_from_vkey,
)
from ledger.proof import verify_consistency, verify_inclusion
from ledger.sqlite import SQLiteTreeStore

VECTORS = Path(__file__).parent / "vectors" / "gm"
DISTID = "distid:1234567812345678"
SM3_CASES = json.loads((VECTORS / "sm3.json").read_text())["cases"]
ANNEX = json.loads((VECTORS / "sm2-annex-a.json").read_text())


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _openssl(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)


# --- SM3 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SM3_CASES, ids=[c["desc"][:3] for c in SM3_CASES])
def test_sm3_matches_gbt_32905_appendix(case: dict[str, str]) -> None:
    import gmssl_pyx

    message, want = case["message_ascii"].encode(), bytes.fromhex(case["digest"])
    hasher = SM3Hasher()
    assert hasher._sm3(message) == want  # the function the tree hashes with
    assert gmssl_pyx.sm3_hash(message) == want  # GmSSL, a second implementation
    out = _openssl("dgst", "-sm3", "-r", stdin=message)  # the command line, a third
    assert out.stdout.split()[0].decode() == case["digest"]


def test_sm3_hasher_has_rfc_9162_shapes() -> None:
    h = hasher_named("sm3")
    assert (h.name, h.size) == ("sm3", 32)
    assert (
        h.empty_root() == _sm3(b"") == bytes.fromhex("1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
    )
    assert h.leaf(b"abc") == _sm3(b"\x00abc") != _sm3(b"abc")
    left, right = h.leaf(b"a"), h.leaf(b"b")
    assert h.node(left, right) == _sm3(b"\x01" + left + right)
    assert h.leaves([b"a", b"b"]) == [left, right]
    assert h.parents([left, right, right, left], 0, 2) == [h.node(left, right), h.node(right, left)]
    assert h.leaf(b"abc") != SHA256.leaf(b"abc")


def test_hasher_registry() -> None:
    assert hasher_names() == ("sha256", "sm3")
    assert hasher_named("sha256") is SHA256
    assert isinstance(hasher_named("sm3"), SM3Hasher)
    with pytest.raises(KeyError):
        hasher_named("md5")


# --- RFC 9162 over SM3: a recursive reference against MerkleLog on SQLite ------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return _sm3(b"")
    if len(d) == 1:
        return _sm3(b"\x00" + d[0])
    k = _k(len(d))
    return _sm3(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    return [*ref_path(m, d[:k]), ref_mth(d[k:])] if m < k else [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


@st.composite
def sm3_trees(draw: st.DrawFn) -> tuple[MerkleLog, list[bytes]]:
    seed = draw(st.integers(0, 2**16))
    batches = draw(st.lists(st.integers(1, 90), min_size=1, max_size=6))
    leaves = [hashlib.sha256(f"{seed}/{i}".encode()).digest()[: (i * 7 + seed) % 40] for i in range(sum(batches))]
    log = MerkleLog(SQLiteTreeStore(":memory:"), hasher_named("sm3"))
    pos = 0
    for b in batches:
        log.append(leaves[pos : pos + b])
        pos += b
    return log, leaves


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sm3_trees(), st.data())
def test_sm3_proofs_equal_recursive_reference(tree: tuple[MerkleLog, list[bytes]], data: st.DataObject) -> None:
    log, leaves = tree
    hasher = log.hasher
    n = len(leaves)
    size = data.draw(st.integers(1, n), label="size")
    root = log.root(size)
    assert root == ref_mth(leaves[:size])
    assert log.root(0) == _sm3(b"")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = log.inclusion_proof(index, size)
    assert proof == ref_path(index, leaves[:size])
    verify_inclusion(hasher, index, size, hasher.leaf(leaves[index]), proof, root)
    with pytest.raises(InclusionProofError):
        verify_inclusion(SHA256, index, size, SHA256.leaf(leaves[index]), proof, root)
    size1 = data.draw(st.integers(1, size), label="size1")
    cproof = log.consistency_proof(size1, size)
    assert cproof == ref_subproof(size1, leaves[:size], True)
    verify_consistency(hasher, size1, size, log.root(size1), root, cproof)
    if cproof:
        bad = [bytes([cproof[0][0] ^ 1]) + cproof[0][1:], *cproof[1:]]
        with pytest.raises(ConsistencyProofError):
            verify_consistency(hasher, size1, size, log.root(size1), root, bad)


# --- SM2: the standard's example ----------------------------------------------------------


def _annex_verifier() -> SM2Verifier:
    return SM2Verifier("gbt32918.example", bytes.fromhex("04" + ANNEX["public_x"] + ANNEX["public_y"]))


def test_sm2_annex_a_public_key_z_and_signature() -> None:
    d = int(ANNEX["private_key"], 16)
    assert gm.public_key_of(d) == _annex_verifier().public_key
    # SPEC: GB/T 32918.2 §5.5 Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)
    ident = ANNEX["id_ascii"].encode()
    curve = b"".join(v.to_bytes(32, "big") for v in (gm.A, gm.B, gm.GX, gm.GY))
    z_a = _sm3((len(ident) * 8).to_bytes(2, "big") + ident + curve + _annex_verifier().public_key[1:])
    assert z_a.hex() == ANNEX["z_a"]
    e = _sm3(z_a + ANNEX["message_ascii"].encode())
    assert e.hex() == ANNEX["e"]
    assert gm.z_a(_annex_verifier().public_key) == z_a  # what the signer and verifier use
    assert _annex_verifier().digest(ANNEX["message_ascii"].encode()) == e
    # SPEC: GB/T 32918.2 §6.1 A5 r = (e + x1) mod n, (x1, y1) = [k]G; A6 s = (1 + d)^-1 (k - r d) mod n
    k = int(ANNEX["k"], 16)
    x1 = int.from_bytes(gm.public_key_of(k)[1:33], "big")
    r = (int.from_bytes(e, "big") + x1) % gm.N
    s = pow(1 + d, -1, gm.N) * (k - r * d) % gm.N
    assert (f"{r:064x}", f"{s:064x}") == (ANNEX["r"], ANNEX["s"])


def test_sm2_annex_a_signature_verifies_with_ours_and_openssl(tmp_path: Path) -> None:
    verifier, message = _annex_verifier(), ANNEX["message_ascii"].encode()
    signature = bytes.fromhex(ANNEX["r"] + ANNEX["s"])
    assert verifier.verify(message, signature)
    assert not verifier.verify(message + b".", signature)
    assert _openssl_verifies(tmp_path, verifier, message, der_signature(signature))
    assert not _openssl_verifies(tmp_path, verifier, message + b".", der_signature(signature))


# --- SM2 against the openssl command line, both ways ---------------------------------------


def _openssl_verifies(tmp: Path, verifier: SM2Verifier, message: bytes, der: bytes) -> bool:
    (tmp / "pub.pem").write_text(verifier.public_key_pem())
    (tmp / "sig.der").write_bytes(der)
    (tmp / "msg").write_bytes(message)
    out = _openssl(
        "dgst",
        "-sm3",
        "-verify",
        str(tmp / "pub.pem"),
        "-sigopt",
        DISTID,
        "-signature",
        str(tmp / "sig.der"),
        str(tmp / "msg"),
    )
    assert out.returncode in (0, 1), out.stderr
    return out.returncode == 0


@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A key made by ``openssl genpkey -algorithm SM2`` and its private scalar (from SEC1 DER)."""
    path = tmp_path_factory.mktemp("openssl") / "key.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", str(path)).returncode == 0
    der = _openssl("ec", "-in", str(path), "-outform", "DER").stdout
    # ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING (32), [0] sm2p256v1, [1] key }
    assert der[2:7] == bytes.fromhex("0201010420"), der[:8].hex()
    return path, der[7:39]


def test_ours_derives_the_public_key_openssl_made(openssl_key: tuple[Path, bytes]) -> None:
    path, d = openssl_key
    pem = _openssl("pkey", "-in", str(path), "-pubout").stdout.decode()
    assert SM2Signer("court.example/gm", d).verifier.public_key_pem() == pem


def test_ours_signs_openssl_verifies(tmp_path: Path, openssl_key: tuple[Path, bytes]) -> None:
    signer = SM2Signer("court.example/gm", openssl_key[1])
    message = "司法 checkpoint\n42\n".encode()
    der = der_signature(signer.sign(message))
    assert _openssl_verifies(tmp_path, signer.verifier, message, der)
    assert not _openssl_verifies(tmp_path, signer.verifier, message.replace(b"42", b"43"), der)


def test_openssl_signs_ours_verifies(tmp_path: Path, openssl_key: tuple[Path, bytes]) -> None:
    path, d = openssl_key
    verifier = SM2Signer("court.example/gm", d).verifier
    message = "司法 checkpoint\n42\n".encode()
    (tmp_path / "msg").write_bytes(message)
    out = _openssl("dgst", "-sm3", "-sign", str(path), "-sigopt", DISTID, str(tmp_path / "msg"))
    assert out.returncode == 0, out.stderr
    signature = raw_signature(out.stdout)
    assert verifier.verify(message, signature)
    assert not verifier.verify(message.replace(b"42", b"43"), signature)
    # Without the distinguishing ID OpenSSL 3.0 hashes an empty ID: a different signature scheme.
    out = _openssl("dgst", "-sm3", "-sign", str(path), str(tmp_path / "msg"))
    assert not verifier.verify(message, raw_signature(out.stdout))


def test_signature_type_is_0xff_and_the_sm2_with_sm3_oid() -> None:
    assert SM2_SM3[0] == 0xFF
    out = _openssl("asn1parse", "-inform", "DER", stdin=SM2_SM3[1:])
    assert b"SM2-with-SM3" in out.stdout, out


# --- SM2 keys and signatures in signed notes -----------------------------------------------


def test_key_strings_round_trip_and_key_ids_are_deterministic() -> None:
    signer = SM2Signer.generate("court.example/gm")
    vkey = signer.verifier.vkey()
    name, hex_id, blob = vkey.split("+", 2)
    raw = base64.b64decode(blob)
    assert raw[:11] == SM2_SM3 and raw[11:] == signer.verifier.public_key and len(raw) == 76
    assert bytes.fromhex(hex_id) == hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert SM2Verifier.from_vkey(vkey) == signer.verifier == verifier_from_vkey(vkey)
    again = signer_from_skey(signer.skey())
    assert isinstance(again, SM2Signer) and again.key_id == signer.key_id
    assert SM2Signer.from_skey(signer.skey()).skey() == signer.skey()
    # Same name and key bytes under another type: another key ID (SPEC: "a different key ID MUST be used").
    assert key_id(name, 0x01, signer.verifier.public_key) != signer.key_id
    ed = Ed25519Signer.generate("court.example/ed")
    assert isinstance(verifier_from_vkey(ed.verifier.vkey()), Ed25519Verifier)
    assert isinstance(signer_from_skey(ed.skey()), Ed25519Signer)


def _vkey_with(name: str, payload: bytes, kid: bytes | None = None) -> str:
    kid = kid if kid is not None else key_id(name, SM2_SM3, payload)
    return f"{name}+{kid.hex()}+{base64.b64encode(SM2_SM3 + payload).decode()}"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda pk: _vkey_with("k", pk[:-1]), id="short key"),
        pytest.param(lambda pk: _vkey_with("k", b"\x02" + pk[1:33]), id="compressed point"),
        pytest.param(lambda pk: _vkey_with("k", pk[:-1] + bytes([pk[-1] ^ 1])), id="point off the curve"),
        pytest.param(lambda pk: _vkey_with("k", pk, b"\0\0\0\0"), id="wrong key id"),
        pytest.param(lambda pk: _vkey_with("k", pk).replace("/wYIKoEcz1UBg3", "/wYIKoEcz1UBgi"), id="sm2 curve oid"),
        pytest.param(lambda pk: "k+00000000+" + base64.b64encode(b"\xfe" + pk).decode(), id="unknown type"),
    ],
)
def test_bad_sm2_verifier_keys_are_refused(make: object) -> None:
    pk = _annex_verifier().public_key
    assert callable(make)
    with pytest.raises(MalformedNoteError):
        verifier_from_vkey(make(pk))


@pytest.mark.parametrize("d", [0, gm.N - 1, gm.N], ids=["zero", "n-1", "n"])
def test_private_scalars_outside_the_range_are_refused(d: int) -> None:
    with pytest.raises(MalformedNoteError):
        SM2Signer("k", d.to_bytes(32, "big"))


def test_out_of_range_or_misshapen_signatures_do_not_verify() -> None:
    verifier, message = _annex_verifier(), ANNEX["message_ascii"].encode()
    r, s = int(ANNEX["r"], 16), int(ANNEX["s"], 16)
    good = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for bad in (
        good[:-1],
        good + b"\0",
        bytes(32) + good[32:],
        good[:32] + gm.N.to_bytes(32, "big"),
        (r + gm.N).to_bytes(33, "big")[1:] + good[32:],
        der_signature(good),  # a note carries r||s, not DER
        (1).to_bytes(32, "big") + (gm.N - 1).to_bytes(32, "big"),  # in range, but t = r + s = 0 mod n (B5)
    ):
        assert not verifier.verify(message, bad)


def test_der_conversion_is_exact() -> None:
    raw = bytes.fromhex(ANNEX["r"] + ANNEX["s"])
    der = der_signature(raw)
    assert der[:4] == bytes.fromhex("30460221")  # r and s have their top bit set: leading zeros
    assert raw_signature(der) == raw
    small = (1).to_bytes(32, "big") + (0x80).to_bytes(32, "big")
    assert der_signature(small) == bytes.fromhex("3007020101020200 80".replace(" ", ""))
    assert raw_signature(der_signature(small)) == small
    for bad in (
        der + b"\0",
        der[:-1],
        b"\x31" + der[1:],
        der[:4] + b"\x00" + der[4:],
        bytes.fromhex("300602010102010100"),
    ):
        with pytest.raises(MalformedNoteError):
            raw_signature(bad)


def test_sm2_checkpoint_opens_with_its_key_and_not_another() -> None:
    signer = SM2Signer.generate("court.example/gm")
    root = hasher_named("sm3").leaf("案件 (2026) 京0105民初1号\n".encode())
    note = sign_checkpoint(Checkpoint("court.example/gm", 1, root), signer).to_text()
    checkpoint, opened = open_checkpoint(note, [verifier_from_vkey(signer.verifier.vkey())])
    assert checkpoint.root_hash == root and len(opened.signatures[0].signature) == 64
    with pytest.raises(UnknownKeyError):  # another SM2 key of the same name: another key ID
        open_checkpoint(note, [SM2Signer.generate("court.example/gm").verifier])
    with pytest.raises(UnknownKeyError):  # an Ed25519 key of the same name
        open_checkpoint(note, [Ed25519Signer.generate("court.example/gm").verifier])
    # The right key ID over a changed signature (or a changed checkpoint) is a forgery, not noise.
    parsed = Note.from_text(note)
    sig = parsed.signatures[0]
    flipped = NoteSignature(sig.name, sig.key_id, sig.signature[:-1] + bytes([sig.signature[-1] ^ 1]))
    with pytest.raises(CheckpointSignatureError):
        open_checkpoint(Note(parsed.text, (flipped,)).to_text(), [signer.verifier])
    with pytest.raises(CheckpointSignatureError):
        open_checkpoint(Note(parsed.text.replace("\n1\n", "\n2\n"), parsed.signatures).to_text(), [signer.verifier])


def test_sm2_checkpoints_through_merkle_log_on_sqlite() -> None:
    signer = SM2Signer.generate("court.example/gm")
    log = MerkleLog(SQLiteTreeStore(":memory:"), hasher_named("sm3"))
    log.append([b"a", b"b", b"c"], signer=signer)
    stored = log.store.checkpoint()
    assert stored is not None
    checkpoint, _ = open_checkpoint(stored[1], [signer.verifier])
    assert (checkpoint.size, checkpoint.root_hash) == (3, ref_mth([b"a", b"b", b"c"]))


def test_ledger_imports_and_sha256_keys_work_without_the_gm_extra() -> None:
    code = (
        "import sys; sys.modules['gmssl_pyx'] = None\n"
        "import ledger.note, ledger.hashing, ledger.checkpoint, ledger.gm\n"
        "from ledger.errors import MalformedNoteError\n"
        "s = ledger.note.Ed25519Signer.generate('a'); ledger.note.verifier_from_vkey(s.verifier.vkey())\n"
        f"try:\n    ledger.note.verifier_from_vkey({_annex_verifier().vkey()!r})\n"
        "except MalformedNoteError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'sifa[gm]'" in out.stdout


def test_sm3_falls_back_to_gmssl_where_openssl_lacks_it() -> None:
    code = (
        "import hashlib\n"
        "real = hashlib.new\n"
        "def new(name, *a, **k):\n"
        "    if name == 'sm3':\n"
        "        raise ValueError('unsupported hash type sm3')  # as an OpenSSL built without SM3\n"
        "    return real(name, *a, **k)\n"
        "hashlib.new = new\n"
        "from ledger.hashing import hasher_named\n"
        "h = hasher_named('sm3'); print(h._sm3(b'abc').hex(), h.empty_root().hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [SM3_CASES[0]["digest"], _sm3(b"").hex()]


def test_gm_extra_is_optional_for_the_verifier_and_part_of_the_server() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert [d.split("==")[0] for d in project["dependencies"]] == ["pynacl"]  # a SHA-256 verifier: PyNaCl alone
    assert project["optional-dependencies"]["gm"] == ["gmssl-pyx==2.1.0"]
    assert set(project["optional-dependencies"]["gm"]) <= set(project["optional-dependencies"]["server"])


def test_chinese_key_names_round_trip() -> None:
    signer = SM2Signer.generate("北京互联网法院/国密")
    assert verifier_from_vkey(signer.verifier.vkey()) == signer.verifier
    note = sign_checkpoint(Checkpoint("北京互联网法院/国密", 0, hasher_named("sm3").empty_root()), signer)
    assert open_checkpoint(note.to_text().encode(), [signer.verifier])[0].size == 0
