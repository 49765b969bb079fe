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
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from dossier.certificate import render
from evidence.certificate import ATTACHMENT, lines, read_printed
from ledger.hashing import SHA256
from ledger.receipt import Receipt, verify_receipt
from ledger.trust import read_trust
from tests.api_node import Node, node  # noqa: F401  (the fixture)
from tests.conftest import IN_CI
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
    assert [c["check"] for c in result["checks"]] == ["receipt", "file_hash", "certificate"]  # type: ignore[index]
    other = tmp_path / "other.txt"
    other.write_bytes(CONTENT + b"x")
    code, result = verify_cli(cert, trust, other)
    assert code == 1 and result["checks"][-1]["code"] == "file_not_in_receipt"  # type: ignore[index]


def _reprinted(cert: bytes, trust: Path, **edits: str) -> bytes:
    """A forger's certificate: the genuine receipt attached, some printed lines changed."""
    [attached] = PdfReader(io.BytesIO(cert)).attachments[ATTACHMENT]
    proved = verify_receipt(Receipt.from_json(attached), read_trust(trust).logs, SHA256)
    real = lines(proved, {}, {})
    real.verified.update(edits)
    return render(real, attached, "https://court.example/verify", court_name="北京市朝阳区人民法院")


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
    forged.write_bytes(_reprinted(cert, trust, **{label: value}))
    if label == "存证时间（北京时间）":
        keep("edited-time", forged.read_bytes())
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
    assert [c.get("term") for c in failed] == ([case["term"]] if "term" in case else [])
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
