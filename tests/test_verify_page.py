"""The public verification page (/verify) in a real browser: headless Chromium (Debian's), driven
by Playwright, against a node on 127.0.0.1.

A recorded file verifies (Web Crypto hash, and the page's own streaming SHA-256); a file with one
byte changed is reported as not recorded; a receipt verifies offline, and a forged one fails the
signature check. Every request body the node receives is recorded: none holds the file's bytes.
Screenshots of each result go to artifacts/browser/.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.cli import main as sifa
from tests.nodes import init, serving
from verifier.cli import beijing

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
FORGED_TIME = "2019-01-01T00:00:00.000000Z"


class BodyRecorder:
    """ASGI wrapper keeping every HTTP request body the node receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        try:
            await self.app(scope, recording, send)
        finally:
            self.bodies.append((scope["path"], b"".join(chunks)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, BodyRecorder, dict[str, str]]]:
    data = tmp_path_factory.mktemp("page") / "data"
    with serving(data, init(data), roles=("clerk",), wrap=BodyRecorder, seal_interval_seconds=0.01) as n:
        yield n.base, n.app, n.as_("clerk")


def record(http: httpx2.Client, case_number: str, content: bytes, name: str,
           media_type: str = "application/octet-stream") -> tuple[str, dict[str, Any], dict[str, Any]]:  # fmt: skip
    """As a clerk (``http``'s credential): open a dossier, upload ``content`` as ``name`` and wait until
    it is sealed; the dossier, the upload's answer and the upload event's receipt."""
    d = http.post("/v1/dossiers", json={"case_number": case_number, "case_type": "民事"}).json()["dossier"]
    r = http.post(f"/v1/dossiers/{d}/documents", content=content,
                  headers={"X-File-Name": quote(name), "Content-Type": media_type})  # fmt: skip
    assert r.status_code == 201, r.text
    up = r.json()
    deadline = time.monotonic() + 20
    while not (rec := http.post("/v1/verify", json={"sha256": up["sha256"]}).json()["records"]) or (
        rec[0]["inclusion_proof"] is None
    ):
        assert time.monotonic() < deadline, "not sealed in time"
        time.sleep(0.05)
    receipt = http.get(f"/v1/dossiers/{d}/receipts/{up['version'] - 1}").json()  # the upload's event
    return d, up, receipt


@pytest.fixture(scope="module")
def recorded(
    site: tuple[str, BodyRecorder, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A file recorded in a dossier (5 MiB and a bit: several hashing chunks), sealed; its receipt."""
    base, recorder, clerk = site
    http = httpx2.Client(base_url=base, timeout=60, headers=clerk)
    data = os.urandom((5 << 20) + 123)
    name = "借款合同 扫描件.pdf"
    d, up, receipt = record(http, "（2026）京0105民初7001号", data, name)
    tlog = http.get(f"/v1/dossiers/{d}/receipts/{up['event_version']}/tlog-proof").text
    folder = tmp_path_factory.mktemp("files")
    (folder / name).write_bytes(data)
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x01
    (folder / "改动一个字节.pdf").write_bytes(bytes(changed))
    (folder / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    (folder / "receipt.tlog-proof").write_text(tlog, encoding="utf-8")
    head, sigs = receipt["checkpoint"].split("\n\n", 1)
    prefix, sig = sigs.strip().split("\n")[0].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 0x01  # one bit of the Ed25519 signature
    forged = {**receipt, "checkpoint": f"{head}\n\n{prefix} {base64.b64encode(raw).decode()}\n"}
    (folder / "forged-receipt.json").write_text(json.dumps(forged, ensure_ascii=False), encoding="utf-8")
    edited = {**receipt, "terms": {**receipt["terms"], "存证时间": FORGED_TIME}}  # signature and proof untouched
    (folder / "edited-time.json").write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    # sifa-receipt/2: the file name disclosed; changed, it must fail; redacted to it alone, the rest not shown
    assert receipt["format"] == "sifa-receipt/2" and any(x["path"] == "name" for x in receipt["disclosures"])
    changed_name = {**receipt, "disclosures": [{**x, "value": "王五借款合同.pdf"} if x["path"] == "name" else x
                                               for x in receipt["disclosures"]]}  # fmt: skip
    (folder / "changed-name.json").write_text(json.dumps(changed_name, ensure_ascii=False), encoding="utf-8")
    redacted = {**receipt, "disclosures": [x for x in receipt["disclosures"] if x["path"] == "name"]}
    (folder / "redacted.json").write_text(json.dumps(redacted, ensure_ascii=False), encoding="utf-8")
    http.close()
    recorder.bodies.clear()  # from here on, only what the page sends
    return {"data": data, "file": folder / name, "changed": folder / "改动一个字节.pdf",
            "receipt": folder / "receipt.json", "forged": folder / "forged-receipt.json",
            "edited": folder / "edited-time.json", "recorded_at": beijing(receipt["terms"]["存证时间"]),
            "tlog": folder / "receipt.tlog-proof", "changed_name": folder / "changed-name.json",
            "redacted": folder / "redacted.json", "name": name, "case_number": "（2026）京0105民初7001号"}  # fmt: skip


def _check(browser: Any, base: str, files: dict[str, Path], shot: str, query: str = "") -> tuple[Any, list[bytes]]:
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    sent: list[bytes] = []
    page.on("request", lambda r: sent.append(r.post_data_buffer or b""))
    page.goto(f"{base}/verify{query}")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#file", str(files["file"]))
    if "receipt" in files:
        page.set_input_files("#receipt", str(files["receipt"]))
    page.click("#go")
    page.wait_for_selector("#verdict", timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    return page, sent


def _kinds(page: Any) -> dict[str, bool]:
    checks = page.query_selector_all("ul.checks li")
    return {c.get_attribute("data-check"): c.get_attribute("class") == "ok" for c in checks}


def test_recorded_file_verifies(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    base, recorder, _ = site
    page, sent = _check(browser, base, {"file": recorded["file"]}, "recorded-file-valid")
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    assert _kinds(page) == {"cFile": True, "cInclusion": True, "cSignature": True}
    text = page.inner_text("#result")
    assert "核验通过" in text and "sifa.court/1101-0105#" in text and "北京市朝阳区人民法院" in text
    assert "存证编号" in text and "存证时间" in text and "上传文件" in text
    page.click("#lang")
    assert "VALID" in page.inner_text("#verdict") and page.get_attribute("html", "lang") == "en"
    page.screenshot(path=str(ARTIFACTS / "recorded-file-valid-en.png"), full_page=True)
    page.close()
    _never_sent(recorded["data"], sent, recorder)


def test_streamed_hash_agrees_with_web_crypto(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    """?stream forces the page's incremental SHA-256 (used for files over 256 MiB)."""
    base, recorder, _ = site
    page, sent = _check(browser, base, {"file": recorded["file"]}, "recorded-file-streamed", "?stream")
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    page.close()
    _never_sent(recorded["data"], sent, recorder)


def test_one_byte_changed_is_not_recorded(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    base, recorder, _ = site
    page, sent = _check(browser, base, {"file": recorded["changed"]}, "one-byte-changed-not-recorded")
    assert page.get_attribute("#verdict", "data-kind") == "none"
    assert "未找到存证记录" in page.inner_text("#verdict")
    page.close()
    _never_sent(recorded["changed"].read_bytes(), sent, recorder)


def test_receipt_verifies_offline_and_forged_receipt_fails(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    base, recorder, _ = site
    before = len(recorder.bodies)
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["receipt"]},
                        "receipt-valid-offline")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    assert "离线" in page.inner_text("#verdict")
    page.close()
    assert not any(path == "/v1/verify" for path, _ in recorder.bodies[before:])  # offline: the node was not asked
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["forged"]},
                        "forged-receipt-signature-fails")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "bad"
    assert _kinds(page) == {"cFile": True, "cInclusion": True, "cSignature": False, "cTerms": False}
    assert _facts(page) == []  # the signature failed: nothing of the record is shown as fact
    page.close()
    _never_sent(recorded["data"], sent, recorder, online=False)


def test_receipt_with_an_edited_recorded_at_fails(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    """Issue 16 item 3: the page shows the time the signed leaf states, and fails a receipt that says otherwise."""
    base, recorder, _ = site
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["receipt"]},
                        "receipt-valid-offline-terms")  # fmt: skip
    assert _kinds(page)["cTerms"] is True and recorded["recorded_at"] in page.inner_text("#result")
    page.close()
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["edited"]},
                        "receipt-edited-time-fails")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "bad", page.inner_text("#result")
    assert _kinds(page) == {"cFile": True, "cInclusion": True, "cSignature": True, "cTerms": False,
                            "cDisclosures": True}  # fmt: skip
    assert page.get_attribute("li[data-check='cTerms']", "data-terms") == "存证时间"
    text = page.inner_text("#result")
    assert beijing(FORGED_TIME) not in text and recorded["recorded_at"] in text  # the verified time, never the claim
    assert "?" not in text and "核验失败" in text
    assert _facts(page) == ["recordId", "recordedAt", "courtName", "item", "height", "leafHash"]
    page.close()
    _never_sent(recorded["data"], sent, recorder, online=False)


def test_a_receipt_for_another_file_says_what_failed(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    """Issue 19: a failed check reads as a failure ("✘ 文件哈希与存证记录不一致"), never a positive sentence
    under a red cross; a .tlog-proof verifies offline as a receipt does; times are Beijing time."""
    base, _, _ = site
    page, _ = _check(browser, base, {"file": recorded["changed"], "receipt": recorded["receipt"]},
                     "receipt-for-another-file")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "bad"
    failed = page.query_selector("li[data-check='cFile']")
    assert failed.get_attribute("class") == "bad" and failed.inner_text() == "文件哈希与存证记录不一致"
    assert "文件哈希与存证记录一致" not in page.inner_text("#result").replace("不一致", "")
    page.close()
    page, _ = _check(browser, base, {"file": recorded["file"], "receipt": recorded["tlog"]}, "tlog-proof-valid")
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    text = page.inner_text("#result")
    assert "北京时间 (UTC+8)" in text and recorded["recorded_at"] in text and "上传文件" in text
    page.click("#lang")
    assert "Document uploaded" in page.inner_text("#result") and "Beijing time" in page.inner_text("#result")
    page.close()
    icon = httpx2.get(f"{base}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml" and b"<svg" in icon.content
    assert 'rel="icon"' in httpx2.get(f"{base}/verify").text


def _fields(page: Any) -> dict[str, str]:
    """The disclosed-fields list the page shows: path -> what it says."""
    dts = page.query_selector_all("#fields dt")
    dds = page.query_selector_all("#fields dd")
    return {dt.get_attribute("data-path"): dd.inner_text() for dt, dd in zip(dts, dds, strict=True)}


def test_receipt_disclosures_verify_in_the_browser(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    """Issue 17: the page checks each disclosure against the proved leaf's commitment (in JS), shows
    what opens as verified and the rest as not disclosed, and fails a changed disclosure, showing none."""
    base, recorder, _ = site
    before = len(recorder.bodies)
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["receipt"]},
                        "receipt-disclosures-valid")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    assert _kinds(page)["cDisclosures"] is True
    fields = _fields(page)
    assert fields["name"] == recorded["name"] and fields["media_type"] == "application/octet-stream"
    assert "文件名 (name)" in page.inner_text("#fields")
    page.close()
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["redacted"]},
                        "receipt-disclosures-redacted")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    fields = _fields(page)
    assert fields["name"] == recorded["name"] and fields["actor"] == "未披露 / not disclosed"
    assert sum(v != "未披露 / not disclosed" for v in fields.values()) == 1
    page.close()
    page, sent = _check(browser, base, {"file": recorded["file"], "receipt": recorded["changed_name"]},
                        "receipt-disclosure-changed-fails")  # fmt: skip
    assert page.get_attribute("#verdict", "data-kind") == "bad", page.inner_text("#result")
    assert _kinds(page)["cDisclosures"] is False
    assert page.get_attribute("li[data-check='cDisclosures']", "data-terms") == "name"
    assert _fields(page) == {} and "王五" not in page.inner_text("#result")  # never shown as verified
    page.close()
    assert not any(path == "/v1/verify" for path, _ in recorder.bodies[before:])  # offline: the node was not asked
    _never_sent(recorded["data"], sent, recorder, online=False)


def test_page_network_traffic_holds_no_case_data(site: Any, browser: Any, recorded: dict[str, Any]) -> None:
    """Issue 17: everything the page receives verifying a file online (the page, its script, the
    /v1/verify answer with the leaf) holds neither the file's name nor the case number."""
    base, _, _ = site
    page = browser.new_page()
    received: list[tuple[str, bytes]] = []
    page.on("response", lambda r: received.append((r.url, r.body())))
    page.goto(f"{base}/verify")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#file", str(recorded["file"]))
    page.click("#go")
    page.wait_for_selector("#verdict", timeout=30_000)
    assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
    page.close()
    assert any(url.endswith("/v1/verify") for url, _ in received)
    for secret in (recorded["name"], recorded["case_number"]):
        for form in (secret.encode(), json.dumps(secret)[1:-1].encode(), quote(secret).encode()):
            assert not any(form in body for _, body in received), secret


def test_page_commitments_agree_with_python(site: Any, browser: Any) -> None:
    """The page's RFC 8785 and commitment against the known answers of tests/vectors/disclosure."""
    base, _, _ = site
    vectors = json.loads((ROOT / "tests" / "vectors" / "disclosure" / "vectors.json").read_text("utf-8"))
    cases = [{"path": c["path"], "value": c["value"], "salt": c["salt"], "want": c["commitment"]}
             for c in vectors["commitments"]]  # fmt: skip
    assert len(cases) > 3
    page = browser.new_page()
    page.goto(f"{base}/verify")
    page.wait_for_selector("body[data-ready='1']")
    got = page.evaluate("async (cs) => { const out = []; for (const c of cs) "
                        "out.push(await commitment(c.path, c.value, b64(c.salt))); return out; }", cases)  # fmt: skip
    assert got == [c["want"] for c in cases]
    page.close()


def _facts(page: Any) -> list[str]:
    return [d.get_attribute("data-fact") for d in page.query_selector_all("dt[data-fact]")]


def test_page_is_accessible_and_locked_down(site: Any, browser: Any) -> None:
    base, _, _ = site
    page = browser.new_page()
    response = page.goto(f"{base}/verify")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector("body[data-ready='1']")
    assert page.get_attribute("html", "lang") == "zh-CN"
    for control in ("#file", "#receipt"):
        ident = control[1:]
        assert page.query_selector(f"label[for='{ident}']") is not None
    assert page.get_attribute("#result", "aria-live") == "polite"
    size = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size >= 18  # large, readable type
    page.keyboard.press("Tab")  # the language toggle, then the file chooser: reachable by keyboard
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file"
    page.close()


def _never_sent(data: bytes, sent: list[bytes], recorder: BodyRecorder, *, online: bool = True) -> None:
    """No request body, seen by the browser or by the node, holds the file's bytes (or a piece);
    what went online was the hash."""
    pieces = [data[:4096], data[len(data) // 2 : len(data) // 2 + 4096], data[-4096:]]
    bodies = [*sent, *(b for _, b in recorder.bodies)]
    assert bodies or not online
    for body in bodies:
        assert not any(p in body for p in pieces)
    if online:
        digest = hashlib.sha256(data).hexdigest().encode()
        assert any(digest in b for b in sent) and any(digest in b for _, b in recorder.bodies)


def test_page_code_agrees_with_python(site: Any, browser: Any) -> None:
    """The page's own pieces against sifa's Python ones: verifier keys (base64 holding '+' and '/'),
    and its incremental SHA-256 at every padding boundary."""
    from ledger.note import Ed25519Signer

    base, _, _ = site
    page = browser.new_page()
    page.goto(f"{base}/verify")
    page.wait_for_selector("body[data-ready='1']")
    keys = [Ed25519Signer(f"sifa.court/1101-{i:04d}", bytes([i]) * 32).verifier.vkey() for i in range(40)]
    assert any("+" in k.split("+", 2)[2] for k in keys) and any("/" in k.split("+", 2)[2] for k in keys)
    ids = page.evaluate("async (keys) => { const out = []; for (const v of keys) { const k = parseVkey(v); "
                        "await checkKeyId(k); out.push(k.id); } return out; }", keys)  # fmt: skip
    assert ids == [k.split("+")[1] for k in keys]
    lengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4099]
    script = ("(ns) => ns.map((n) => { const h = new Sha256(); const d = new Uint8Array(n).map((_, i) => i % 251);"
              " h.update(d.subarray(0, n >> 1)); h.update(d.subarray(n >> 1)); return hex(h.digest()); })")  # fmt: skip
    got = page.evaluate(script, lengths)
    assert got == [hashlib.sha256(bytes(i % 251 for i in range(n))).hexdigest() for n in lengths]
    page.close()


def test_a_first_era_receipt_verifies_on_the_page_after_a_key_rotation(browser: Any, tmp_path: Path) -> None:
    """After ``sifa rotate-key`` the page pins every key of the log's history with its window: a
    receipt the first key signed verifies with its proof that the current key's log extends it
    (``key_consistency``, as a fresh receipt for that checkpoint carries), and fails without it."""
    from api.node import open_tree_store
    from ledger.log import MerkleLog

    data = tmp_path / "data"
    admin = init(data)
    content, name = os.urandom(4096), "证据 一.pdf"
    with (serving(data, admin, roles=("clerk",), seal_interval_seconds=0.01) as n,
          httpx2.Client(base_url=n.base, timeout=60, headers=n.as_("clerk")) as http):  # fmt: skip
        _, _, receipt = record(http, "（2026）京0105民初7002号", content, name)
    with contextlib.redirect_stdout(io.StringIO()):
        assert sifa(["rotate-key", "--data-dir", str(data)]) == 0
    store = open_tree_store(data, "")
    try:
        latest = store.checkpoint()
        assert latest is not None
        proof = MerkleLog(store).consistency_proof(receipt["tree_size"], latest[0])
    finally:
        store.close()
    (tmp_path / name).write_bytes(content)
    bare = tmp_path / "first-era.json"
    bare.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    proved = tmp_path / "first-era-proved.json"
    proved.write_text(json.dumps({**receipt, "key_consistency": {"checkpoint": latest[1], "proof": [
        base64.b64encode(h).decode() for h in proof]}}, ensure_ascii=False), encoding="utf-8")  # fmt: skip
    with serving(data, admin, roles=(), seal_interval_seconds=0.01) as n:
        page, _ = _check(browser, n.base, {"file": tmp_path / name, "receipt": proved}, "receipt-first-era-proved")
        assert page.get_attribute("#verdict", "data-kind") == "ok", page.inner_text("#result")
        page.close()
        page, _ = _check(browser, n.base, {"file": tmp_path / name, "receipt": bare}, "receipt-first-era-unproved")
        assert page.get_attribute("#verdict", "data-kind") == "bad"
        assert _kinds(page)["cSignature"] is False
        page.close()


def test_page_refuses_disclosure_forms_the_cli_refuses(
    site: Any, browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page refuses the disclosures ``sifa-verify`` refuses: an integer written ``2.0`` (Python reads
    a float, which no commitment holds), a salt without its base64 padding (read with validation), a
    disclosure with a key beside path, value and salt, a sifa-receipt/1 carrying disclosures. Each
    against the CLI's answer on the same file; the receipt as served verifies in both."""
    from tests.dossier_fixtures import pdf_bytes
    from verifier.cli import main as sifa_verify

    base, _, clerk = site
    http = httpx2.Client(base_url=base, timeout=60, headers=clerk)
    content, name = pdf_bytes(2), "两页.pdf"
    _, _, receipt = record(http, "（2026）京0105民初7003号", content, name, "application/pdf")
    key = http.get("/v1/log/key").json()
    http.close()
    (tmp_path / name).write_bytes(content)
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"logs": [{"origin": key["origin"], "key": key["verifier_key"]}]}), encoding="utf-8")
    by_path = {x["path"]: x for x in receipt["disclosures"]}
    assert by_path["pages"]["value"] == 2 and by_path["name"]["salt"].endswith("==")  # 16 bytes: 2 of 24 padding
    served = json.dumps(receipt, ensure_ascii=False)
    pages, salt = json.dumps(by_path["pages"]), by_path["name"]["salt"]
    cases = {
        "served": served,
        "float-integer": served.replace(pages, pages.replace('"value": 2,', '"value": 2.0,')),
        "unpadded-salt": served.replace(f'"{salt}"', f'"{salt.rstrip("=")}"'),
        "extra-key": json.dumps({**receipt, "disclosures": [{**by_path["name"], "note": ""}]}, ensure_ascii=False),
        "receipt-1-disclosing": json.dumps({**receipt, "format": "sifa-receipt/1"}, ensure_ascii=False),
    }
    assert len({*cases.values()}) == len(cases)
    answers = {}
    for case, text in cases.items():
        path = tmp_path / f"{case}.json"
        path.write_text(text, encoding="utf-8")
        code = sifa_verify([str(tmp_path / name), "--receipt", str(path), "--trust", str(trust), "--json"])
        out = capsys.readouterr().out
        failed = [c["code"] for c in json.loads(out)["checks"] if not c["ok"]] if out else []
        page, _ = _check(browser, base, {"file": tmp_path / name, "receipt": path}, f"receipt-disclosure-{case}")
        bad = page.query_selector("li[data-check='cDisclosures'].bad")
        answers[case] = (code, failed, page.get_attribute("#verdict", "data-kind"),
                         bad and bad.get_attribute("data-terms"))  # fmt: skip
        page.close()
    assert answers == {
        "served": (0, [], "ok", None),
        "float-integer": (1, ["disclosure_mismatch"], "bad", "pages"),
        "unpadded-salt": (1, ["disclosure_mismatch"], "bad", "name"),
        "extra-key": (2, [], "bad", None),  # an unreadable receipt, on the page too
        "receipt-1-disclosing": (2, [], "bad", None),
    }
