"""The /verify page of a 国密 court in Chromium: SM3 and SM2 in JavaScript (api/static/gm.js) against
the standards' known answers and the Python side, and a GM node's receipts verified in the page."""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ledger.gm import N, SM2Signer, SM2Verifier, z_a
from ledger.hashing import sm3_function
from tests.nodes import init, serving
from tests.test_verify_page import ARTIFACTS, record

VECTORS = Path(__file__).resolve().parent / "vectors" / "gm"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data = tmp_path_factory.mktemp("gm-page") / "data"
    with serving(data, init(data, crypto="gm"), roles=("clerk",), seal_interval_seconds=0.01,
                 sequencer="thread") as n:  # fmt: skip
        yield n.base, n.as_("clerk")


@pytest.fixture(scope="module")
def page(site: tuple[str, dict[str, str]], browser: Any) -> Iterator[Any]:
    pg = browser.new_page()
    pg.goto(f"{site[0]}/verify")
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    pg.close()


SM3_JS = "(hexes) => hexes.map((h) => Array.from(GM.sm3(Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16))),"
SM3_JS += " (b) => b.toString(16).padStart(2, '0')).join(''))"
CHUNKED_JS = """(parts) => { const h = new GM.Sm3();
  for (const p of parts) h.update(Uint8Array.from(p.match(/../g) || [], (x) => parseInt(x, 16)));
  return Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join(''); }"""
SM2_JS = """(cases) => cases.map(([pub, msg, sig]) => {
  const u = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
  return GM.sm2Verify(u(pub), u(msg), u(sig)); })"""


def test_sm3_known_answers_and_python_agree(page: Any) -> None:
    cases = json.loads((VECTORS / "sm3.json").read_text(encoding="utf-8"))["cases"]
    got = page.evaluate(SM3_JS, [c["message_ascii"].encode().hex() for c in cases])
    assert got == [c["digest"] for c in cases]  # GB/T 32905-2016 Appendix A.1, A.2
    rng = random.Random(32905)
    messages = [bytes(rng.randrange(256) for _ in range(n)) for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000)]
    sm3 = sm3_function()
    assert page.evaluate(SM3_JS, [m.hex() for m in messages]) == [sm3(m).hex() for m in messages]
    big = os.urandom(200_003)
    parts = [big[:1], big[1:64], big[64:100_000], big[100_000:]]
    assert page.evaluate(CHUNKED_JS, [p.hex() for p in parts]) == sm3(big).hex()


def test_sm2_verify_agrees_with_the_standard_and_python(page: Any) -> None:
    a = json.loads((VECTORS / "sm2-annex-a.json").read_text(encoding="utf-8"))
    pub = "04" + a["public_x"] + a["public_y"]
    msg = a["message_ascii"].encode().hex()
    assert page.evaluate("(p) => Array.from(GM.za(Uint8Array.from(p.match(/../g), (x) => parseInt(x, 16))),"
                         " (b) => b.toString(16).padStart(2, '0')).join('')", pub) == a["z_a"]  # fmt: skip
    assert z_a(bytes.fromhex(pub)).hex() == a["z_a"]
    sig = a["r"] + a["s"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    n = f"{N:064x}"
    cases = [(pub, msg, sig), (pub, msg, flipped), (pub, msg + "00", sig), (pub, msg, "00" * 32 + a["s"]),
             (pub, msg, n + a["s"]), (pub[:-2] + "00", msg, sig)]  # fmt: skip
    assert page.evaluate(SM2_JS, cases) == [True, False, False, False, False, False]
    # Signatures made by the node's signer (GmSSL) verify in the page; one changed bit does not.
    rng = random.Random(32918)
    signed = []
    for i in range(8):
        key = SM2Signer.generate("sifa.court/1101-0105")
        message = f"sifa.court/1101-0105\n{i}\n".encode() + bytes(rng.randrange(256) for _ in range(i * 37))
        raw = key.sign(message)
        assert SM2Verifier("sifa.court/1101-0105", key.verifier.public_key).verify(message, raw)
        bad = bytearray(raw)
        bad[i] ^= 0x40
        signed += [(key.verifier.public_key.hex(), message.hex(), raw.hex()),
                   (key.verifier.public_key.hex(), message.hex(), bytes(bad).hex())]  # fmt: skip
    assert page.evaluate(SM2_JS, signed) == [True, False] * 8


def _recorded(
    site: tuple[str, dict[str, str]], folder: Path, number: str = "（2026）京0105民初7101号"
) -> dict[str, Path]:
    base, clerk = site
    data = os.urandom(300_000)
    with httpx2.Client(base_url=base, timeout=60, headers=clerk) as http:
        _, _, receipt = record(http, number, data, "国密 证据.pdf")
    assert receipt["log"] == {"origin": "sifa.court/1101-0105", "hash": "sm3", "signature": "sm2"}
    (folder / "证据.pdf").write_bytes(data)
    (folder / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    head, sigs = receipt["checkpoint"].split("\n\n", 1)
    prefix, sig = sigs.strip().split("\n")[0].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[40] ^= 0x01  # one bit of s
    forged = {**receipt, "checkpoint": f"{head}\n\n{prefix} {base64.b64encode(raw).decode()}\n"}
    (folder / "forged.json").write_text(json.dumps(forged, ensure_ascii=False), encoding="utf-8")
    named = {**receipt, "log": {**receipt["log"], "hash": "sha256", "signature": "ed25519"}}
    (folder / "named-sha256.json").write_text(json.dumps(named, ensure_ascii=False), encoding="utf-8")
    return {"file": folder / "证据.pdf", "receipt": folder / "receipt.json", "forged": folder / "forged.json",
            "named": folder / "named-sha256.json"}  # fmt: skip


def _run(pg: Any, base: str, file: Path, receipt: Path | None, shot: str) -> dict[str, bool]:
    pg.goto(f"{base}/verify")
    pg.wait_for_selector("body[data-ready='1']")
    pg.set_input_files("#file", str(file))
    if receipt is not None:
        pg.set_input_files("#receipt", str(receipt))
    pg.click("#go")
    pg.wait_for_selector("#verdict", timeout=60_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"gm-{shot}.png"), full_page=True)
    return {
        c.get_attribute("data-check"): c.get_attribute("class") == "ok" for c in pg.query_selector_all("ul.checks li")
    }


def test_a_gm_courts_record_verifies_in_the_page(site: Any, page: Any, tmp_path: Path) -> None:
    base = site[0]
    files = _recorded(site, tmp_path)
    checks = _run(page, base, files["file"], None, "online-valid")
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    assert checks == {"cFile": True, "cInclusion": True, "cSignature": True}
    assert "sifa.court/1101-0105#" in page.inner_text("#result")
    checks = _run(page, base, files["file"], files["receipt"], "receipt-valid")
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    assert all(checks.values()) and "cTerms" in checks
    checks = _run(page, base, files["file"], files["forged"], "receipt-forged-sm2")
    assert page.get_attribute("#verdict", "data-kind") == "bad" and checks["cSignature"] is False
    checks = _run(page, base, files["file"], files["named"], "receipt-names-sha256")
    assert page.get_attribute("#verdict", "data-kind") == "bad" and checks["cTerms"] is False
    assert checks["cInclusion"] is True  # hashed with SM3, as the pinned key says, whatever the receipt names


def _variants(receipt_path: Path, folder: Path) -> dict[str, Path]:
    """Receipts Python's Receipt.from_json refuses (or whose checkpoint it refuses), as raw JSON text."""
    text = receipt_path.read_text(encoding="utf-8")
    receipt = json.loads(text)
    n, size = receipt["leaf_index"], receipt["tree_size"]
    text = json.dumps(receipt, ensure_ascii=False)
    forms = [f'"{n}.0"', f'"{n}"', f'" {n}"', f'"{hex(n)}"', f'"{n}e0"', f"{n}.0", f"{n}e0", f"[{n}]"]
    edits = {f"index-{i}": text.replace(f'"leaf_index": {n}', f'"leaf_index": {form}') for i, form in enumerate(forms)}
    edits["tree-size-float"] = text.replace(f'"tree_size": {size}', f'"tree_size": {size}.0')
    edits["height-float"] = text.replace(f'"区块高度": {size}', f'"区块高度": {size}.0')
    edits["proof-33-bytes"] = json.dumps({**receipt, "inclusion_proof": [base64.b64encode(bytes(33)).decode()]})
    edits["proof-65-hashes"] = json.dumps({**receipt, "inclusion_proof": [base64.b64encode(bytes(32)).decode()] * 65})
    head, sigs = receipt["checkpoint"].split("\n\n", 1)
    genuine = sigs.strip().split("\n")[0]
    prefix, sig = genuine.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[40] ^= 0x01
    forged_line = f"{prefix} {base64.b64encode(raw).decode()}"
    edits["forged-then-genuine"] = json.dumps(
        {**receipt, "checkpoint": f"{head}\n\n{forged_line}\n{sigs}"}, ensure_ascii=False
    )
    out = {}
    for name, body in edits.items():
        assert body != text, name
        (folder / f"{name}.json").write_text(body, encoding="utf-8")
        out[name] = folder / f"{name}.json"
    return out


def test_the_page_refuses_what_python_refuses_in_a_receipt(site: Any, page: Any, tmp_path: Path) -> None:
    """A leaf_index "1.0", "1", " 1", "0x1", "1e0" (or 1.0, 1e0) passed and was shown as the verified 存证编号;
    a tree size 3.0 passed; a forged line of the pinned key before its genuine one passed."""
    from ledger.errors import MalformedError, VerificationError
    from ledger.receipt import Receipt, verify_receipt
    from ledger.trust import parse_trust

    base = site[0]
    files = _recorded(site, tmp_path, "（2026）京0105民初7102号")
    key = httpx2.get(f"{base}/v1/log/key").json()["verifier_key"]
    trust = parse_trust({"logs": [{"key": key}]})
    receipt = json.loads(files["receipt"].read_text(encoding="utf-8"))
    shown = f"sifa.court/1101-0105#{receipt['leaf_index']}"
    for name, path in _variants(files["receipt"], tmp_path).items():
        with pytest.raises((MalformedError, VerificationError)):  # Python refuses each
            verify_receipt(Receipt.from_json(path.read_text(encoding="utf-8")), trust.logs)
        checks = _run(page, base, files["file"], path, f"receipt-{name}")
        assert page.get_attribute("#verdict", "data-kind") == "bad", (name, page.inner_text("#result"))
        if name == "forged-then-genuine":
            assert checks["cSignature"] is False, name
        assert shown not in page.inner_text("#result"), name
