"""存证证书 over real HTTP: a node serves the PDF; its text, its QR code and its embedded receipt are read
back with tools we did not write (pypdf and poppler for the text, zxing-cpp for the QR code), and
``sifa-verify --certificate`` accepts it and refuses an edited one. Each certificate's first page is
rendered to PNG with poppler's ``pdftoppm`` and kept under artifacts/certificate/.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader, PdfWriter

from api.node import load_signer
from dossier.certificate import FONTS, render
from evidence.certificate import ATTACHMENT, PRINTABLE, SIGNATURE_PREFIX, lines, printable, read_printed
from ledger.hashing import SHA256
from ledger.note import Ed25519Signer, Signer
from ledger.receipt import Receipt, verify_receipt
from ledger.trust import read_trust
from tests.conftest import IN_CI
from tests.nodes import Node, node  # noqa: F401  (the fixture)
from verifier.cli import main as sifa_verify

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "certificate"
VECTORS = ROOT / "tests" / "vectors" / "receipts"
PDFTOPPM = shutil.which("pdftoppm")
zxingcpp = pytest.importorskip("zxingcpp")
if PDFTOPPM is None:
    if IN_CI:
        pytest.fail("pdftoppm is missing in CI; .ci/system-packages installs poppler-utils", pytrace=False)
    pytest.skip("poppler's pdftoppm is not installed (apt-get install poppler-utils)", allow_module_level=True)
ORIGIN = "sifa.court/1101-0105"
CONTENT = "（2026）京0105民初7号 借款合同\n第一条 借款金额人民币伍万元整。\n".encode()


@pytest.fixture(scope="module")
def recorded(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:  # noqa: F811
    r = node.http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初7号", "case_type": "民事",
                                             "parties": [{"role": "原告", "name": "张三"}]},
                       headers=node.as_("clerk"))  # fmt: skip
    assert r.status_code == 201, r.text
    dossier = r.json()["dossier"]
    up = node.http.post(f"/v1/dossiers/{dossier}/documents", content=CONTENT,
                        headers={**node.as_("clerk"), "X-File-Name": quote("借款合同.txt"),
                                 "Content-Type": "text/plain"})  # fmt: skip
    assert up.status_code == 201, up.text
    trust = tmp_path_factory.mktemp("trust") / "trust.json"
    page = node.http.get("/verify").text  # the node's log key, as its public page pins it
    start = page.index('"key": "') + len('"key": "')
    vkey = page[start : page.index('"', start)]
    trust.write_text(json.dumps({"format": "sifa-trust/1", "logs": [{"key": vkey}]}), encoding="utf-8")
    evidence = tmp_path_factory.mktemp("file") / "借款合同.txt"
    evidence.write_bytes(CONTENT)
    yield {"dossier": dossier, "version": up.json()["version"] - 1, "trust": trust, "file": evidence}


def fetch(node: Node, path: str, role: str = "clerk") -> bytes:  # noqa: F811
    deadline = time.monotonic() + 20
    while True:
        r = node.http.get(path, headers=node.as_(role))
        if r.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return r.content


def keep(name: str, pdf: bytes) -> Path:
    """Save the PDF and its first page as PNG (150 dpi) under artifacts/certificate/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    assert PDFTOPPM is not None
    subprocess.run([PDFTOPPM, "-png", "-r", "150", "-singlefile", str(path), str(ARTIFACTS / name)], check=True)
    return ARTIFACTS / f"{name}.png"


def verify_cli(cert: Path, trust: Path, file: Path | None = None) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sifa_verify(
            [*([str(file)] if file else []), "--certificate", str(cert), "--trust", str(trust), "--json"]
        )
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def test_certificate_over_http_reads_back_as_verified(node: Node, recorded: dict[str, object]) -> None:  # noqa: F811
    dossier, version = recorded["dossier"], recorded["version"]
    pdf = fetch(node, f"/v1/dossiers/{dossier}/receipts/{version}/certificate")
    png = keep("by-event", pdf)
    reader = PdfReader(io.BytesIO(pdf))
    # A4 (595 x 842 points), one page.
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    # The receipt rides along, and it verifies against the node's key.
    [attached] = reader.attachments[ATTACHMENT]
    trust = read_trust(recorded["trust"])  # type: ignore[arg-type]
    proved = verify_receipt(Receipt.from_json(attached), trust.logs, SHA256)
    expected = lines(proved, {}, {})
    # Text extracted by two independent readers (pypdf, poppler's pdftotext) equals the verified fields.
    for text in (reader.pages[0].extract_text(),
                 subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                                check=True).stdout.decode()):  # fmt: skip
        printed = read_printed(text)
        for label, value in expected.verified.items():
            assert printed[label] == value, (label, printed.get(label), value)
    printed = read_printed(reader.pages[0].extract_text())
    assert printed["文件 SHA-256"] == hashlib.sha256(CONTENT).hexdigest()
    assert printed["文件大小"] == f"{len(CONTENT)} 字节"
    assert printed["案号"] == "（2026）京0105民初7号"
    assert printed["存证法院"] == "北京市朝阳区人民法院"
    assert printed["存证时间（北京时间）"].startswith(proved.recorded_at[:4])
    # The font is embedded and subset (poppler's pdffonts: "emb yes sub yes").
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    font_rows = fonts.splitlines()[2:]
    assert font_rows and all(" yes yes " in row for row in font_rows), fonts
    # The QR code, read by zxing-cpp off the rendered page, opens this node's /verify page for this record.
    [code] = [b for b in zxingcpp.read_barcodes(Image.open(png)) if b.format == zxingcpp.BarcodeFormat.QRCode]
    url = urlsplit(code.text)
    assert f"{url.scheme}://{url.netloc}" == node.base and url.path == "/verify"
    query = parse_qs(url.query)
    assert query == {"record": [printed["存证编号"]], "sha256": [hashlib.sha256(CONTENT).hexdigest()]}
    assert node.http.get(url.path).status_code == 200


def test_certificate_by_file_hash_is_the_upload_s(node: Node, recorded: dict[str, object]) -> None:  # noqa: F811
    dossier, version = recorded["dossier"], recorded["version"]
    sha = hashlib.sha256(CONTENT).hexdigest()
    by_file = read_printed(PdfReader(io.BytesIO(fetch(node, f"/v1/dossiers/{dossier}/files/{sha}/certificate")))
                           .pages[0].extract_text())  # fmt: skip
    by_event = read_printed(PdfReader(io.BytesIO(fetch(node, f"/v1/dossiers/{dossier}/receipts/{version}/certificate")))
                            .pages[0].extract_text())  # fmt: skip
    assert by_file["存证编号"] == by_event["存证编号"] and by_file["证书编号"] == by_event["证书编号"]
    r = node.http.get(f"/v1/dossiers/{dossier}/files/{'0' * 64}/certificate", headers=node.as_("clerk"))
    assert r.status_code == 404 and r.json()["code"] == "tree_size", r.text  # as a download of it
    r = node.http.get(f"/v1/dossiers/{dossier}/files/xyz/certificate", headers=node.as_("clerk"))
    assert r.status_code == 400 and r.json()["code"] == "invalid_digest", r.text
    assert node.http.get(f"/v1/dossiers/{dossier}/receipts/{version}/certificate").status_code == 401


def test_sifa_verify_certificate(node: Node, recorded: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    dossier, version = recorded["dossier"], recorded["version"]
    cert = tmp_path / "证书.pdf"
    cert.write_bytes(fetch(node, f"/v1/dossiers/{dossier}/receipts/{version}/certificate"))
    trust, file = recorded["trust"], recorded["file"]
    assert isinstance(trust, Path) and isinstance(file, Path)
    code, result = verify_cli(cert, trust, file)
    assert code == 0 and result["valid"], result
    checks = [c["check"] for c in result["checks"]]  # type: ignore[index]
    assert checks == ["receipt", "disclosures", "file_hash", "certificate_signature", "certificate"]
    other = tmp_path / "other.txt"
    other.write_bytes(CONTENT + b"x")
    code, result = verify_cli(cert, trust, other)
    assert code == 1 and result["checks"][-1]["code"] == "file_not_in_receipt"  # type: ignore[index]


def _reprinted(cert: bytes, trust: Path, signer: Signer, **edits: str) -> bytes:
    """A certificate of the genuine receipt with some printed lines changed, signed by ``signer``."""
    [attached] = PdfReader(io.BytesIO(cert)).attachments[ATTACHMENT]
    proved = verify_receipt(Receipt.from_json(attached), read_trust(trust).logs, SHA256)
    real = lines(proved, {}, {})
    real.verified.update(edits)
    return render(real, attached, "https://court.example/verify", court_name="北京市朝阳区人民法院", signer=signer)


@pytest.mark.parametrize(("label", "value"), [
    ("存证时间（北京时间）", "2019-01-01 08:00:00"),
    ("存证时间（UTC）", "2019-01-01T00:00:00.000000Z"),
    ("文件 SHA-256", "0" * 64),
    ("交易哈希", "f" * 64),
    ("区块高度", "999"),
])  # fmt: skip
def test_edited_printed_field_fails(
    node: Node,  # noqa: F811
    recorded: dict[str, object],
    tmp_path: Path,
    label: str,
    value: str,
) -> None:
    trust = recorded["trust"]
    assert isinstance(trust, Path)
    cert = fetch(node, f"/v1/dossiers/{recorded['dossier']}/receipts/{recorded['version']}/certificate")
    forged = tmp_path / "forged.pdf"
    # A forger (any key but the court's): the signature check refuses it before any text is read.
    forged.write_bytes(_reprinted(cert, trust, Ed25519Signer.generate(ORIGIN), **{label: value}))
    if label == "存证时间（北京时间）":
        keep("edited-time", forged.read_bytes())
    code, result = verify_cli(forged, trust)
    assert code == 1, result
    failed = result["checks"][-1]  # type: ignore[index]
    assert failed["code"] == "certificate_signature_invalid", failed
    # The court's own key over a misprinted line (the second check): the line is named.
    forged.write_bytes(_reprinted(cert, trust, load_signer(node.data), **{label: value}))
    code, result = verify_cli(forged, trust)
    assert code == 1, result
    failed = result["checks"][-1]  # type: ignore[index]
    assert failed["code"] == "certificate_mismatch" and failed["term"] == label, failed


def test_edited_attached_receipt_fails(node: Node, recorded: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    """The printed page left alone, the receipt inside it edited (its time, then its leaf hash)."""
    trust = recorded["trust"]
    assert isinstance(trust, Path)
    cert = fetch(node, f"/v1/dossiers/{recorded['dossier']}/receipts/{recorded['version']}/certificate")
    for term, value, code in (("存证时间", "2019-01-01T00:00:00.000000Z", "receipt_mismatch"),
                              ("交易哈希", "0" * 64, "receipt_mismatch")):  # fmt: skip
        reader = PdfReader(io.BytesIO(cert))
        [attached] = reader.attachments[ATTACHMENT]
        doc = json.loads(attached)
        doc["terms"][term] = value
        writer = PdfWriter()  # the same page, without the genuine attachment; the edited one attached
        writer.add_page(reader.pages[0])
        writer.add_attachment(ATTACHMENT, json.dumps(doc, ensure_ascii=False).encode())
        forged = tmp_path / "forged.pdf"
        with forged.open("wb") as f:
            writer.write(f)
        got, result = verify_cli(forged, trust)
        assert got == 1, result
        failed = result["checks"][-1]  # type: ignore[index]
        assert failed["code"] == code and failed.get("term") == term, failed


def test_not_a_certificate_is_input_error(tmp_path: Path) -> None:
    for name, data in (("empty.pdf", b""), ("text.pdf", b"%PDF-1.7\nnot really"), ("receipt.pdf",
                       (VECTORS / "valid.json").read_bytes())):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(data)
        assert verify_cli(path, VECTORS / "trust.json")[0] == 2
    code, _ = verify_cli(tmp_path / "missing.pdf", VECTORS / "trust.json")
    assert code == 2


CERTIFICATES = json.loads((VECTORS / "certificates.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CERTIFICATES))
def test_certificate_corpus_case(name: str) -> None:
    """The committed certificates (tests/make_receipt_vectors.py): the verdict, the failed check's code and line."""
    case = CERTIFICATES[name]
    code, result = verify_cli(VECTORS / f"{name}.pdf", VECTORS / case["trust"], VECTORS / case["file"])
    assert code == case["exit"], result
    failed = [c for c in result["checks"] if not c["ok"]]  # type: ignore[attr-defined]
    assert [c["code"] for c in failed] == ([case["code"]] if case["code"] else [])
    assert [c["term"] for c in failed if "term" in c] == ([case["term"]] if "term" in case else [])
    if name == "certificate-witnessed":  # the trusted witnesses that cosigned, as printed and checked
        assert result["certificate"]["verified"]["见证节点"].count("sifa.witness/demo-") == 2  # type: ignore[index]
    if code == 0:
        assert result["certificate"]["declared"] == {"存证法院": "北京市朝阳区人民法院（示例）",  # type: ignore[index]
                                                     "案号": "（2026）京0105民初123号"}  # fmt: skip


def test_no_cjk_font_is_a_typed_error(tmp_path: Path) -> None:
    from dossier.certificate import CertificateFontMissingError, find_font

    with pytest.raises(CertificateFontMissingError) as caught:
        find_font(((str(tmp_path / "none.ttc"), 0),))
    assert caught.value.code == "certificate_font_missing" and "fonts-wqy-microhei" in str(caught.value)
    assert find_font()[0].is_file()  # this machine (and CI, through .ci/system-packages) has one


WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def _overlay(cert: bytes, rows: list[tuple[float, str]]) -> bytes:
    """forge5 (the tester's): an incremental update painting white boxes and new text over lines."""
    from fpdf import FPDF

    over = FPDF(unit="mm", format="A4")
    over.add_font("F", "", WQY, collection_font_number=0)
    over.set_auto_page_break(False)
    over.add_page()
    over.set_fill_color(255, 255, 255)
    over.set_font("F", size=9)
    for y, text in rows:
        over.rect(9, y, 190, 5.5, style="F")
        over.set_xy(10, y)
        over.cell(0, 5.5, text)
    writer = PdfWriter(io.BytesIO(cert), incremental=True)
    writer.pages[0].merge_page(PdfReader(io.BytesIO(bytes(over.output()))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _hidden_true_lines(cert: bytes, mode: str) -> bytes:
    """forge.py (the tester's): a new PDF, the genuine receipt attached, the true lines in 1-pt white
    text (or off the page) first, then visible forged lines."""
    from fpdf import FPDF

    reader = PdfReader(io.BytesIO(cert))
    [attached] = reader.attachments[ATTACHMENT]
    rows = [line for line in reader.pages[0].extract_text().splitlines() if "：" in line]
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font("F", "", WQY, collection_font_number=0)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("F", size=1)
    pdf.set_text_color(255, 255, 255)
    for i, row in enumerate(rows):
        pdf.text(-400 if mode == "offpage" else 1, 1 + i * 0.4, row)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("F", size=9)
    pdf.set_xy(10, 20)
    for row in rows:
        forged = "存证时间（北京时间）：2025-01-01 09:00:00.000000" if row.startswith("存证时间（北京时间）") else row
        pdf.multi_cell(0, 5.5, forged, new_x="LMARGIN", new_y="NEXT")
    pdf.embed_file(bytes=attached, basename=ATTACHMENT, mime_type="application/json")
    return bytes(pdf.output())


def test_forged_certificates_fail_the_signature(node: Node, recorded: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    """The tester's forgeries (forge5.py, forge.py) verified VALID by text extraction alone; the
    court's signature over every byte refuses each, and the genuine certificate still verifies."""
    trust = recorded["trust"]
    assert isinstance(trust, Path)
    cert = fetch(node, f"/v1/dossiers/{recorded['dossier']}/receipts/{recorded['version']}/certificate")
    genuine = tmp_path / "genuine.pdf"
    genuine.write_bytes(cert)
    assert verify_cli(genuine, trust)[0] == 0
    # pypdf reads the signed file, poppler renders it: the trailing comment line is ignored.
    assert cert.rstrip(b"\n").rsplit(b"\n", 1)[1].startswith(SIGNATURE_PREFIX)
    assert len(PdfReader(io.BytesIO(cert)).pages) == 1
    keep("signed", cert)
    y0 = 43.0
    forgeries = {
        "incremental-overlay": _overlay(
            cert,
            [
                (y0 + 2 * 5.5, "存证时间（北京时间）：2025-01-01 09:00:00.000000"),
                (y0 + 6 * 5.5, "文件 SHA-256：" + "ab" * 32),
            ],
        ),
        "white-1pt": _hidden_true_lines(cert, "white"),
        "off-page": _hidden_true_lines(cert, "offpage"),
    }
    at = cert.rindex(SIGNATURE_PREFIX)
    forgeries["white-1pt-with-genuine-signature"] = forgeries["white-1pt"] + cert[at:]
    forgeries["two-signatures"] = cert + cert[at:]
    forgeries["signature-removed"] = cert[:at]
    forgeries["byte-flipped"] = cert[: at - 20] + bytes([cert[at - 20] ^ 1]) + cert[at - 19 :]
    for name, forged in forgeries.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(forged)
        code, result = verify_cli(path, trust)
        assert code in (1, 2), (name, result)
        if code == 1:
            assert result["checks"][-1]["code"] == "certificate_signature_invalid", (name, result)  # type: ignore[index]
    # Signed by another log's key (a trust file naming both): not this receipt's log, refused.
    other = Ed25519Signer.generate("sifa.court/9999-0001")
    both = tmp_path / "both.json"
    doc = json.loads(trust.read_text(encoding="utf-8"))
    doc["logs"].append({"key": other.verifier.vkey()})
    both.write_text(json.dumps(doc), encoding="utf-8")
    resigned = tmp_path / "resigned.pdf"
    from evidence.certificate import sign_pdf

    resigned.write_bytes(sign_pdf(cert[:at], other))
    code, result = verify_cli(resigned, both)
    assert code == 1 and result["checks"][-1]["code"] == "certificate_signature_invalid", result  # type: ignore[index]


NAMES = {
    "emoji": "判决书😀.pdf",
    "line-separator": "判决\u2028书.pdf",
    "paragraph-separator": "判决\u2029书.pdf",
    "nbsp": "判决\u00a0书.pdf",
    "arabic": "حكم المحكمة.pdf",
    "private-use": "判决\ue000书.pdf",
    "extension-b": "𠀀𠀁判决书.pdf",
    "extension-a": "㐀判决书.pdf",
    "zero-width": "判\u200b决\ufeff书.pdf",
    "combining": "Jose\u0301 判决书.pdf",
    "ligature": "\ufb01le 判决书.pdf",
    "fullwidth-space": "判决\u3000书.pdf",
    "colon": "判决书：第一部分.pdf",
    "ascii-punctuation": "判决书(第1号)[副本]#~{x}.pdf",
    "long-cjk-60": "民事判决书" * 12 + ".pdf",
    "long-cjk-150": "民事判决书" * 30 + ".pdf",
    "long-4byte": "𠀀" * 70 + ".pdf",
    "long-ascii": "judgment-" * 20 + ".pdf",
    "korean-kana": "판결문 判決書 はんけつ.pdf",
}


@pytest.mark.parametrize("key", sorted(NAMES))
def test_every_genuine_certificate_verifies(node: Node, recorded: dict[str, object], tmp_path: Path, key: str) -> None:  # noqa: F811
    """File names of every kind (wrapped, emoji, separators, scripts the font lacks): the certificate
    prints them (escaped where the font cannot draw them) and sifa-verify accepts it."""
    body = f"name case {key}".encode()
    up = node.http.post(f"/v1/dossiers/{recorded['dossier']}/documents", content=body,
                        headers={**node.as_("clerk"), "X-File-Name": quote(NAMES[key]),
                                 "Content-Type": "text/plain"})  # fmt: skip
    assert up.status_code == 201, up.text
    cert = tmp_path / "cert.pdf"
    sha = hashlib.sha256(body).hexdigest()
    cert.write_bytes(fetch(node, f"/v1/dossiers/{recorded['dossier']}/files/{sha}/certificate"))
    trust = recorded["trust"]
    assert isinstance(trust, Path)
    code, result = verify_cli(cert, trust)
    assert code == 0, result
    shown = result["certificate"]["verified"].get("文件名称")  # type: ignore[index]
    assert shown in (None, printable(unicodedata.normalize("NFC", NAMES[key])))  # names are stored NFC


def test_printable_characters_are_in_the_font() -> None:
    """Every character the certificate prints as itself is drawn by each CJK font the node may use."""
    from fontTools.ttLib import TTCollection

    for path, index in FONTS:
        if not Path(path).is_file():
            continue
        cmap = TTCollection(path).fonts[index].getBestCmap()
        missing = [hex(c) for lo, hi in PRINTABLE for c in range(lo, hi + 1) if c not in cmap]
        assert not missing, (path, missing[:10])
    assert printable("a\\b😀\u2028") == "a\\u{5C}b\\u{1F600}\\u{2028}"


def test_certificate_link_is_the_public_url_not_the_host_header(node: Node, recorded: dict[str, object]) -> None:  # noqa: F811
    """SIFA_PUBLIC_URL is printed; a request's Host header (the client's choice) never is."""
    path = f"/v1/dossiers/{recorded['dossier']}/receipts/{recorded['version']}/certificate"
    fetch(node, path)
    r = node.http.get(path, headers={**node.as_("clerk"), "Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    assert r.status_code == 200, r.text
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "evil.example" not in text and f"{node.base}/verify?" in text.replace("\n", "")
    # No public URL configured: no link, no QR code, and the certificate still verifies.
    [attached] = PdfReader(io.BytesIO(r.content)).attachments[ATTACHMENT]
    trust = recorded["trust"]
    assert isinstance(trust, Path)
    proved = verify_receipt(Receipt.from_json(attached), read_trust(trust).logs, SHA256)
    court = "北京市朝阳区人民法院"
    bare = render(lines(proved, {}, {}), attached, None, court_name=court, signer=load_signer(node.data))
    assert "核验地址：" not in PdfReader(io.BytesIO(bare)).pages[0].extract_text()


def _pdf(pages: list[bytes], attachment: bytes) -> bytes:
    """A hand-built PDF (the tester's slow2.py): ``pages`` content streams, ``attachment`` as receipt.json."""
    import zlib

    objs = [b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(receipt.json) 3 0 R] >> >> >>",
            b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(len(pages)))
            + b"] /Count %d >>" % len(pages),
            b"<< /Type /Filespec /F (receipt.json) /UF (receipt.json) /EF << /F 4 0 R >> >>",
            b"<< /Type /EmbeddedFile /Length %d >>\nstream\n" % len(attachment)
            + attachment + b"\nendstream"]  # fmt: skip
    for i, body in enumerate(pages):
        packed = zlib.compress(body)
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (6 + 2 * i))
        objs.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream")
    out, offsets = b"%PDF-1.7\n", []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)


def test_verifier_is_bounded(tmp_path: Path) -> None:
    """/dev/zero, a 17 MiB file, several pages, a huge content stream: exit 2, quickly."""
    receipt = (VECTORS / "valid.json").read_bytes()
    trust = VECTORS / "trust.json"
    big = b"BT /F1 1 Tf " + b"1 0 0 1 0 0 Tm (a) Tj " * 120_000 + b"ET"
    cases = {
        "four-pages.pdf": _pdf([b"BT ET"] * 4, receipt),
        "huge-content.pdf": _pdf([big], receipt),
        "too-large.pdf": b"%PDF-1.7\n" + b"0" * (16 * 1024 * 1024 + 1),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    started = time.monotonic()
    for name in [*cases, "/dev/zero"]:
        path = Path(name) if name.startswith("/") else tmp_path / name
        out = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(out):
            code = sifa_verify(["--certificate", str(path), "--trust", str(trust)])
        assert code == 2, (name, out.getvalue())
        assert "Traceback" not in out.getvalue() and "sifa-cert-" not in out.getvalue()
    assert time.monotonic() - started < 30


def test_unreadable_attached_receipt_names_the_certificate(tmp_path: Path) -> None:
    """A certificate whose receipt.json is not JSON: the error names the certificate, no temp path."""
    cert = tmp_path / "证书.pdf"
    cert.write_bytes(_pdf([b"BT ET"], b"not json at all"))
    out = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(out):
        code = sifa_verify(["--certificate", str(cert), "--trust", str(VECTORS / "trust.json")])
    assert code == 2
    assert str(cert) in out.getvalue() and "sifa-cert-" not in out.getvalue(), out.getvalue()


def test_verified_section_holds_only_computed_lines() -> None:
    """The tester's forge.py: 文件 SHA-256 printed on an event without a file, 文件名称 on a Served
    event. Every label of the verified section must be one the verifier computes for that receipt,
    once; any other, or a duplicate, is named."""
    from evidence.certificate import COLON, VERIFIED_HEADING, compare_verified

    expected = {"证书编号": "SC0123", "存证编号": "sifa.court/1101-0105#7", "记录类型": "Catalogued",
                "区块高度": "9", "见证节点": "无"}  # fmt: skip

    def page(rows: list[tuple[str, str]]) -> str:
        return "\n".join([VERIFIED_HEADING, *(f"{k}{COLON}{v}" for k, v in rows), "核验方法：", "1. …"])

    rows = list(expected.items())
    assert compare_verified(page(rows), expected) is None
    # Wrapped lines (a long value broken by the layout) compare as one.
    assert compare_verified(page(rows).replace("sifa.court/1101", "sifa.court/\n1101"), expected) is None
    forged = [*rows[:3], ("文件 SHA-256", "ab" * 32), *rows[3:]]
    assert compare_verified(page(forged), expected)[0] == "文件 SHA-256"  # type: ignore[index]
    assert compare_verified(page([*rows[:3], ("文件名称", "判决书.pdf"), *rows[3:]]), expected)[0] == "文件名称"  # type: ignore[index]
    assert compare_verified(page([*rows[:2], rows[1], *rows[2:]]), expected)[0] == "存证编号"  # type: ignore[index]
    assert compare_verified(page([*rows, ("备注", "x")]), expected)[0] == "备注"  # type: ignore[index]
    assert compare_verified(page([*rows, ("备注", "x")]), expected, any_witnesses=True) is not None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=160))
def test_any_name_prints_and_reads_back(name: str) -> None:
    """Any file name (any code point, any length): printed escaped where needed, wrapped where long,
    the page's text read back by pypdf compares equal to the verified lines."""
    from evidence.certificate import FILE_NAME, compare_verified

    raw = (VECTORS / "valid.json").read_bytes()
    proved = verify_receipt(Receipt.from_json(raw), read_trust(VECTORS / "trust.json").logs, SHA256)
    printed = lines(proved, {}, {})
    printed.verified[FILE_NAME] = printable(name)
    pdf = render(printed, raw, None, court_name="示例法院", signer=Ed25519Signer(ORIGIN, bytes(range(32))))
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert compare_verified(text, printed.verified) is None, (name, text)


def test_certificate_signature_on_a_gm_log() -> None:
    """On a GM log the certificate is signed as its checkpoints are, with SM2 (SM3 digest): the same
    line, the same message; a checkpoint-note signature is never one (the message holds a NUL)."""
    from evidence.certificate import CertificateSignatureError, check_signature, sign_pdf, signature_message
    from ledger.gm import SM2Signer

    signer = SM2Signer.generate("court.example/gm")
    pdf = (VECTORS / "certificate-valid.pdf").read_bytes()
    unsigned = pdf[: pdf.rindex(SIGNATURE_PREFIX)]
    signed = sign_pdf(unsigned, signer)
    assert check_signature(signed, [signer.verifier], "court.example/gm") == unsigned
    with pytest.raises(CertificateSignatureError):
        check_signature(signed, [signer.verifier], "sifa.court/1101-0105")  # another log's name
    with pytest.raises(CertificateSignatureError):
        check_signature(signed + b"%%EOF\n", [signer.verifier], "court.example/gm")
    assert b"\x00" in signature_message(unsigned)
