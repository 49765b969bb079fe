"""The bad input catalogue: one named case each, its documented error code, and stores unchanged.

Every case runs against a real node over HTTP; before and after it the event store, the blob
store and the dossier's history are compared (nothing recorded is lost or half-written).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.peers import sign_request
from api.principals import ADMINISTRATORS, token_id
from ledger.note import Ed25519Signer
from tests.nodes import PEER, Node

SHA = "ab" * 32
PDF = b"%PDF-1.4 not much of a pdf"


@dataclass
class Case:
    role: str | None
    method: str
    path: str
    status: int
    code: str
    json: Any = None
    content: bytes | Callable[[], Any] | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)


def up(name: str = "证据.pdf", **headers: str | bytes) -> dict[str, str | bytes]:
    return {"X-File-Name": quote(name), "Content-Type": "application/pdf", **headers}


def doc_type(text: str) -> dict[str, str | bytes]:
    return up(**{"X-Doc-Type": quote(text)})


PARTY = {"role": "原告", "name": "张三"}
EVID = {"sha256": SHA, "size": 10, "name": "合同.pdf", "submitter": PARTY}
SERVED = {"document_id": "{doc}", "channel": "电子送达平台", "sent_at": "2026-11-22T08:00:00Z", "party": 0}
SERVICE = {"document_id": "{doc}", "recipient": PARTY, "channel": "电子送达平台", "sent_at": "2026-11-22T08:00:00Z"}


def big() -> Any:
    return (b"x" * (1 << 20) for _ in range(21))


def json_of(mib: int) -> Any:
    """A JSON object of ``mib`` MiB (a case number of digits), streamed: sent chunked, no Content-Length."""
    yield '{"case_type": "民事", "case_number": "'.encode()
    for _ in range(mib):
        yield b"1" * (1 << 20)
    yield b'"}'


JSON = {"Content-Type": "application/json"}
# A list cursor as the list once gave them out, unauthenticated: ["2026-11-22T00:00:00Z", "<a uuid>"].
UNSIGNED = "WyIyMDI2LTExLTIyVDAwOjAwOjAwWiIsICI2NDU0MDM5Yy0wNzkxLTUxOGUtYmM1Ni0zMTZmY2QwNzhlZmIiXQ"


def tar_with_pax_size(size: bytes) -> bytes:
    """A tar stream whose first member's PAX header gives it ``size`` (docs/package.md's tar reader)."""
    record = b" size=" + size + b"\n"
    n = len(record) + len(str(len(record) + 2))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, n
    member = tarfile.TarInfo("bagit.txt")
    member.size = 10
    return (pax.tobuf(tarfile.USTAR_FORMAT) + (b"%d" % n + record).ljust(512, b"\0")
            + member.tobuf(tarfile.USTAR_FORMAT) + b"x" * 10 + b"\0" * 1526)  # fmt: skip


@functools.cache
def _peer_package() -> bytes:
    """A dossier package of the peer court the node trusts (its log key signs the checkpoint)."""
    from tests.dossier_fixtures import make_stack
    from tests.test_package import _dossier, _package

    with tempfile.TemporaryDirectory() as tmp:
        peer = make_stack("sqlite", Path(tmp), court="1101-0200", seed=bytes(range(7, 39)))
        try:
            return _package(peer, _dossier(peer, files=1))
        finally:
            peer.close()


def deep_package(part: str) -> Callable[[], bytes]:
    """The peer's package with one part nested 100000 deep (json.loads recursed: a RecursionError, a 500)."""

    def make() -> bytes:
        from tests.test_verifier import _deep_members

        return _deep_members(_peer_package(), part)

    return make


D = "/v1/dossiers/{d}"
PEER_PACKAGE = "/v1/peer/dossiers/{d}/package"
PEER_FILE = "/v1/peer/dossiers/{d}/files/{corrupt}"  # fixity's repair from a peer (api/peer_repair.py)
# fmt: off
CASES: dict[str, Case] = {
    # credentials and roles
    "no credential": Case(None, "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "bearer prefix missing": Case("raw-token", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "forged credential": Case("forged", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "revoked credential": Case("revoked", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "lawyer opens a dossier": Case("lawyer", "POST", "/v1/dossiers", 403, "forbidden", json={}),
    "lawyer reads a dossier not admitted to": Case("lawyer", "GET", D, 404, "dossier_not_found"),
    "party uploads to a dossier not admitted to": Case(
        "party", "POST", D + "/documents", 404, "dossier_not_found", content=PDF, headers=up()
    ),
    "clerk archives": Case("clerk", "POST", D + "/archive", 403, "forbidden", json={"retention": "永久"}),
    "principal name with a NUL": Case(
        "administrator", "POST", "/v1/principals", 422, "invalid_input", json={"name": "李明\x00", "role": "clerk"}
    ),
    "principal name with a bidi override": Case(
        "administrator", "POST", "/v1/principals", 422, "invalid_input",
        json={"name": "李\u202e明", "role": "clerk"},
    ),
    "principal name only whitespace": Case(
        "administrator", "POST", "/v1/principals", 422, "invalid_input", json={"name": "\u3000 ", "role": "clerk"}
    ),
    "judge issues credentials": Case(
        "judge", "POST", "/v1/principals", 403, "forbidden", json={"name": "x", "role": "clerk"}
    ),
    # bodies (api/edge.py): credentials are checked before a body is read; JSON bodies have 1 MiB
    "oversized JSON body": Case(
        "clerk", "POST", "/v1/dossiers", 413, "payload_too_large", content=b"{" + b" " * (2 << 20) + b"}", headers=JSON
    ),
    "oversized JSON body sent without a length": Case(
        "clerk", "POST", "/v1/dossiers", 413, "payload_too_large", content=lambda: json_of(2), headers=JSON
    ),
    "unauthenticated large body": Case(
        None, "POST", "/v1/dossiers", 401, "unauthenticated", content=lambda: json_of(60), headers=JSON
    ),
    "large body for a role that may not send it": Case(
        "lawyer", "POST", "/v1/dossiers", 403, "forbidden", content=lambda: json_of(60), headers=JSON
    ),
    "oversized body to a public route": Case(
        None, "POST", "/v1/verify", 413, "payload_too_large", content=lambda: json_of(2), headers=JSON
    ),
    "oversized body to a node-to-node route": Case(
        "peer", "GET", PEER_PACKAGE, 413, "payload_too_large", content=lambda: json_of(2), headers=JSON
    ),
    # opening a dossier
    "case number with ASCII brackets missing": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "2026京0105民初1号", "case_type": "民事"},
    ),
    "case number with serial 0": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "（２０２６）京0105民初000号", "case_type": "民事"},
    ),
    "case number without 号": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "（2026）京0105民初1", "case_type": "民事"},
    ),
    "empty case number": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input", json={"case_number": "", "case_type": "民事"}
    ),
    "case number of 10,000 characters": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request", json={"case_number": "号" * 10000, "case_type": "民事"}
    ),
    "unknown case type": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "（2026）京0105民初9001号", "case_type": "外星"},
    ),
    "appeal naming a first instance not held here": Case(
        "clerk", "POST", "/v1/dossiers", 404, "dossier_not_found",
        json={"case_number": "（2026）京0105民终9009号", "case_type": "民事",
              "first_instance": "6454039c-0791-518e-bc56-316fcd078efb"},
    ),
    "case already open": Case(
        "clerk", "POST", "/v1/dossiers", 409, "dossier_exists",
        json={"case_number": "（2026）京0105民初8000号", "case_type": "民事"},
    ),
    "party without a name": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request",
        json={"case_number": "（2026）京0105民初9002号", "case_type": "民事", "parties": [{"role": "原告"}]},
    ),
    "party name with control characters": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_input",
        json={
            "case_number": "（2026）京0105民初9003号",
            "case_type": "民事",
            "parties": [{"role": "原告", "name": "张\x1b[31m三"}],
        },
    ),
    "body that is not JSON": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request", content=b"{not json",
        headers={"Content-Type": "application/json"},
    ),
    "201 parties": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request",
        json={"case_number": "（2026）京0105民初9004号", "case_type": "民事", "parties": [PARTY] * 201},
    ),
    "101 parties (200 full ones made a leaf the log could not seal)": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request",
        json={"case_number": "（2026）京0105民初9005号", "case_type": "民事", "parties": [PARTY] * 101},
    ),
    "party address of 501 characters": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request",
        json={"case_number": "（2026）京0105民初9006号", "case_type": "民事",
              "parties": [{**PARTY, "address": "址" * 501}]},
    ),
    "party name with a bidi isolate": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "（2026）京0105民初9007号", "case_type": "民事",
              "parties": [{"role": "原告", "name": "张\u2067三\u2069"}]},
    ),
    "party role with a C1 control": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input",
        json={"case_number": "（2026）京0105民初9008号", "case_type": "民事",
              "parties": [{"role": "原\x85告", "name": "张三"}]},
    ),
    # finding
    "dossier list with a forged cursor": Case("clerk", "GET", "/v1/dossiers?cursor=WyJ4Il0", 422, "invalid_cursor"),
    "dossier list with a cursor holding a lone surrogate": Case(
        "clerk", "GET", "/v1/dossiers?cursor=WyJcdWQ4MDAiLCAieCJd", 422, "invalid_cursor"
    ),
    "dossier list with a well-formed cursor it never gave out": Case(
        "clerk", "GET", "/v1/dossiers?cursor=" + UNSIGNED, 422, "invalid_cursor",
    ),
    "dossier list opened to the calendar's last day": Case(
        "clerk", "GET", "/v1/dossiers?opened_to=9999-12-31", 422, "invalid_input"
    ),
    "dossier list opened from the calendar's first day": Case(
        "clerk", "GET", "/v1/dossiers?opened_from=0001-01-01", 422, "invalid_input"
    ),
    "dossier list with an unknown status": Case("clerk", "GET", "/v1/dossiers?status=lost", 422, "invalid_request"),
    "dossier list by party name asked by a lawyer": Case("lawyer", "GET", "/v1/dossiers?party=张三", 403, "forbidden"),
    "principal that does not exist": Case(
        "administrator", "GET", "/v1/principals/6454039c-0791-518e-bc56-316fcd078efb", 404, "principal_not_found"
    ),
    # uploads
    "form upload without a boundary": Case(
        "clerk", "POST", D + "/documents/form", 415, "unsupported_media_type", content=b"x",
        headers={"Content-Type": "multipart/form-data"},
    ),
    "form upload with no file part": Case(
        "clerk", "POST", D + "/documents/form", 400, "malformed_form",
        content=b'--b\r\nContent-Disposition: form-data; name="doc_type"\r\n\r\n\xe8\xb5\xb7\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "form upload cut off inside its file": Case(
        "clerk", "POST", D + "/documents/form", 400, "malformed_form",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "SVG with a script declared as a GIF": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch",
        content=b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        headers=up("图.gif", **{"Content-Type": "image/gif"}),
    ),
    "HTML declared as a TIFF": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch",
        content=b"<html><script>alert(1)</script></html>", headers=up("扫描.tif", **{"Content-Type": "image/tiff"}),
    ),
    "markup with a stray byte declared as a GIF": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch",
        content=b"<svg onload=alert(1)>\xff\x00</svg>", headers=up("图.gif", **{"Content-Type": "image/gif"}),
    ),
    "text declared as audio": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch",
        content="庭审录音的文字记录".encode(), headers=up("录音.wav", **{"Content-Type": "audio/wav"}),
    ),
    "PNG declared as a PDF": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch", content=b"\x89PNG\r\n\x1a\n" + bytes(64),
        headers=up(),
    ),
    "PDF declared as a JPEG": Case(
        "clerk", "POST", D + "/documents", 415, "media_type_mismatch", content=PDF,
        headers=up("照片.jpg", **{"Content-Type": "image/jpeg"}),
    ),
    "declared hash is not the content's": Case(
        "clerk", "POST", D + "/documents", 422, "digest_mismatch", content=PDF, headers=up(**{"X-Content-SHA256": SHA})
    ),
    "declared hash is not hex": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_digest", content=PDF,
        headers=up(**{"X-Content-SHA256": "../../etc/passwd"}),
    ),
    "file name with path traversal": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("../../etc/passwd")
    ),
    "file name with a NUL byte": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("a\x00.pdf")
    ),
    "file name with an escape character": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("a\x1b.pdf")
    ),
    "file name of 10,000 characters": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_request", content=PDF, headers=up("名" * 10000)
    ),
    "file name that is '..'": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("..")
    ),
    "file name with a bidi override (exe.pdf shown for fdp.exe)": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("证据\u202efdp.exe")
    ),
    "file name with a C1 control": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=up("a\x85.pdf")
    ),
    "file name sent as raw UTF-8": Case(
        "clerk", "POST", D + "/documents", 400, "header_not_ascii", content=PDF,
        headers={"X-File-Name": "证据目录.pdf".encode(), "Content-Type": "application/pdf"},
    ),
    "doc type sent as raw UTF-8": Case(
        "clerk", "POST", D + "/documents", 400, "header_not_ascii", content=PDF,
        headers=up(**{"X-Doc-Type": "起诉状".encode()}),
    ),
    "content type sent as raw UTF-8": Case(
        "clerk", "POST", D + "/documents", 400, "header_not_ascii", content=PDF,
        headers=up(**{"Content-Type": "application/pdf; name=证据".encode()}),
    ),
    "doc type of 70,000 characters (stopped the log)": Case(
        "lawyer", "POST", "/v1/dossiers/{open}/documents", 422, "invalid_request", content=PDF,
        headers=doc_type("证" * 70000),
    ),
    "doc type of 51 characters": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=doc_type("证" * 51)
    ),
    "doc type with a NUL": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=PDF, headers=doc_type("起诉状\x00")
    ),
    "doc type that is not UTF-8": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_encoding", content=PDF,
        headers=up(**{"X-Doc-Type": "%E8%B5%B7%FF"}),
    ),
    # refused uploads store nothing: every check runs before the bytes are (the catalogue checks the blob store)
    "file name with a blank title": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=b"orphan 1",
        headers={"X-File-Name": "%20.txt", "Content-Type": "text/plain"},
    ),
    "file name with an ideographic-space title": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_input", content=b"orphan 2",
        headers={"X-File-Name": "%E3%80%80.pdf", "Content-Type": "application/pdf"},
    ),
    "file name with a malformed percent escape": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_encoding", content=b"orphan 4",
        headers={"X-File-Name": "a%ZZb.txt", "Content-Type": "text/plain"},
    ),
    "file name with a lone percent sign": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_encoding", content=b"orphan 5",
        headers={"X-File-Name": "a%.txt", "Content-Type": "text/plain"},
    ),
    "doc type with a malformed percent escape": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_encoding", content=b"orphan 6",
        headers=up(**{"X-Doc-Type": "%E8%B5%B7%G1"}),
    ),
    "file name that is not UTF-8": Case(
        "clerk", "POST", D + "/documents", 400, "invalid_encoding", content=PDF,
        headers={"X-File-Name": "%FF%FE.pdf", "Content-Type": "application/pdf"},
    ),
    "file name missing": Case(
        "clerk", "POST", D + "/documents", 422, "invalid_request", content=PDF,
        headers={"Content-Type": "application/pdf"},
    ),
    "multipart body": Case(
        "clerk", "POST", D + "/documents", 415, "unsupported_media_type", content=PDF,
        headers=up(**{"Content-Type": "multipart/form-data; boundary=x"}),
    ),
    "media type without a subtype": Case(
        "clerk", "POST", D + "/documents", 415, "unsupported_media_type", content=PDF,
        headers=up(**{"Content-Type": "pdf"}),
    ),
    "oversized streamed upload": Case(
        "clerk", "POST", D + "/documents", 413, "payload_too_large", content=big,
        headers=up("大.bin", **{"Content-Type": "application/octet-stream"}),  # a type its bytes cannot contradict
    ),
    "upload to an unknown dossier": Case(
        "clerk", "POST", "/v1/dossiers/00000000-0000-0000-0000-000000000000/documents", 404, "dossier_not_found",
        content=PDF, headers=up(),
    ),
    "upload to a malformed dossier id": Case(
        "clerk", "POST", "/v1/dossiers/../documents", 404, "not_found", content=PDF, headers=up()
    ),
    "download a file found corrupt": Case("clerk", "GET", D + "/files/{corrupt}", 503, "blob_corrupt"),
    "upload to an archived dossier": Case(
        "clerk", "POST", "/v1/dossiers/{archived}/documents", 409, "dossier_archived", content=PDF, headers=up()
    ),
    # evidence, service, contracts
    "evidence hash in upper case": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "sha256": SHA.upper()}
    ),
    "evidence hash too short": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "sha256": "ab" * 31}
    ),
    "evidence of negative size": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": -1}
    ),
    "evidence size a boolean": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": True}
    ),
    "evidence size a numeric string": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": "5"}
    ),
    "catalogue order a float": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_request",
        json={"document_id": "{doc}", "volume": "正卷", "category": "x", "order": 1.0, "title": "x"},
    ),
    "catalogue pages a boolean": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_request",
        json={"document_id": "{doc}", "volume": "正卷", "category": "x", "order": 1, "title": "x", "pages": True},
    ),
    "evidence size not an integer": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": 1.5}
    ),
    "evidence of 2**53 bytes (no RFC 8785 integer: the leaf could not be written)": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": 2**53}
    ),
    "evidence description with a carriage return": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_input", json={**EVID, "description": "第一行\r\n第二行"}
    ),
    "evidence name with a bidi override": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_input", json={**EVID, "name": "合同\u202e.pdf"}
    ),
    "service channel with an escape character": Case(
        "clerk", "POST", D + "/services", 422, "invalid_input", json={**SERVICE, "channel": "平台\x1b[2J"}
    ),
    "evidence without submitter": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request",
        json={k: v for k, v in EVID.items() if k != "submitter"},
    ),
    "service of an unknown document": Case(
        "clerk", "POST", D + "/services", 404, "unknown_document", json={**SERVICE, "document_id": "nope"}
    ),
    "service time without a time zone": Case(
        "clerk", "POST", D + "/services", 422, "invalid_request", json={**SERVICE, "sent_at": "2026-11-22T08:00:00"}
    ),
    "service time that is not a time": Case(
        "clerk", "POST", D + "/services", 422, "invalid_request", json={**SERVICE, "sent_at": "yesterday"}
    ),
    # 送达 records (dossier/service.py) and their public check
    "送达 to a dossier with no party": Case("clerk", "POST", D + "/service-records", 422, "invalid_input", json=SERVED),
    "送达 delivered before it was sent": Case(
        "clerk", "POST", D + "/service-records", 422, "invalid_input",
        json={**SERVED, "delivered_at": "2026-11-21T08:00:00Z"},
    ),
    "送达 by post without a tracking number": Case(
        "clerk", "POST", D + "/service-records", 422, "invalid_input", json={**SERVED, "channel": "邮寄"}
    ),
    "送达 of a document not in the dossier": Case(
        "clerk", "POST", D + "/service-records", 404, "unknown_document", json={**SERVED, "document_id": "nope"}
    ),
    "送达 recorded by a lawyer": Case("lawyer", "POST", D + "/service-records", 403, "forbidden", json=SERVED),
    "送达 check of a malformed hash": Case(None, "POST", "/v1/service/check", 422, "invalid_request",
                                          json={"sha256": "XYZ"}),
    "送达 check with a 65-character 送达码": Case(None, "POST", "/v1/service/check", 422, "invalid_request",
                                               json={"sha256": SHA, "code": "A" * 65}),
    # 执行 and 结案 (dossier/execution.py)
    "执行 operation where no execution was opened": Case(
        "clerk", "POST", D + "/execution/operations", 422, "invalid_input", json={"kind": "执行通知"}
    ),
    "执行 opened on a leaf of another dossier": Case(
        "judge", "POST", D + "/execution", 422, "invalid_input",
        json={"judgment_dossier": "{archived}", "judgment_leaf": 0},
    ),
    "冻结 without an amount": Case(
        "clerk", "POST", D + "/execution/operations", 422, "invalid_input", json={"kind": "冻结", "account": "6222"}
    ),
    "扣划 of a fractional amount": Case(
        "clerk", "POST", D + "/execution/operations", 422, "invalid_request",
        json={"kind": "扣划", "account": "6222", "amount_fen": 0.5},
    ),
    "approval of an unknown operation": Case(
        "judge", "POST", D + "/execution/operations/nope/approve", 422, "invalid_input", json={}
    ),
    "execution audit asked by a lawyer": Case("lawyer", "GET", D + "/execution/audit", 403, "forbidden"),
    "结案 with an unknown 结案方式": Case(
        "judge", "POST", D + "/closure", 422, "invalid_input", json={"method": "凭感觉", "date": "2026-12-01"}
    ),
    "结案 on 30 February": Case(
        "judge", "POST", D + "/closure", 422, "invalid_input", json={"method": "判决", "date": "2026-02-30"}
    ),
    "status of a dossier the lawyer is not admitted to": Case("lawyer", "GET", D + "/status", 404,
                                                              "dossier_not_found"),
    "送达 of a 副卷 document": Case(
        "clerk", "POST", "/v1/dossiers/{open}/service-records", 422, "service_document_court_only",
        json={**SERVED, "document_id": "{secret_doc}"},
    ),
    "送达 sent in 2099": Case(
        "clerk", "POST", D + "/service-records", 422, "time_in_future",
        json={**SERVED, "sent_at": "2099-01-01T00:00:00Z"},
    ),
    "送达 with an unknown field": Case(
        "clerk", "POST", D + "/service-records", 422, "invalid_request", json={**SERVED, "receipt": "{doc}"}
    ),
    "送达 check with an unknown field": Case(None, "POST", "/v1/service/check", 422, "invalid_request",
                                            json={"sha256": SHA, "verbose": True}),
    "执行 operation with an unknown field": Case(
        "clerk", "POST", D + "/execution/operations", 422, "invalid_request", json={"kind": "执行通知", "force": True}
    ),
    "结案 on 9999-12-31": Case(
        "judge", "POST", D + "/closure", 422, "time_in_future", json={"method": "判决", "date": "9999-12-31"}
    ),
    "contract without parties": Case(
        "clerk", "POST", D + "/contracts", 422, "invalid_request",
        json={"contract_sha256": SHA, "parties": [], "signed_at": "2026-01-01T00:00:00Z"},
    ),
    # transfers, catalogue, archive
    "transfer to an unknown court": Case(
        "judge", "POST", D + "/transfers", 422, "unknown_court",
        json={"to_court": "9999-0001", "kind": "上诉", "reason": "上诉"},
    ),
    "transfer of an unknown kind": Case(
        "judge", "POST", D + "/transfers", 422, "invalid_request",
        json={"to_court": "1101-0200", "kind": "流放", "reason": "x"},
    ),
    "transfer with a blank reason": Case(
        "judge", "POST", D + "/transfers", 422, "invalid_input",
        json={"to_court": "1101-0200", "kind": "上诉", "reason": "   "},
    ),
    "transfer reason with a NUL": Case(
        "judge", "POST", D + "/transfers", 422, "invalid_input",
        json={"to_court": "1101-0200", "kind": "上诉", "reason": "不服\x00判决"},
    ),
    "catalogue title with a C1 control": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_input",
        json={"document_id": "{doc}", "volume": "正卷", "category": "起诉状", "order": 1, "title": "起诉状\x9b"},
    ),
    "catalogue title of 501 characters": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_request",
        json={"document_id": "{doc}", "volume": "正卷", "category": "起诉状", "order": 1, "title": "题" * 501},
    ),
    # the 副卷 is for the court only: absent for a lawyer or party, and never theirs to place
    "lawyer places a document in the 副卷": Case(
        "lawyer", "POST", "/v1/dossiers/{open}/catalogue", 403, "forbidden",
        json={"document_id": "{secret_doc}", "volume": "副卷", "category": "审理报告", "order": 1, "title": "x"},
    ),
    "lawyer downloads a 副卷 file": Case(
        "lawyer", "GET", "/v1/dossiers/{open}/files/{secret_sha}", 404, "unknown_file"
    ),
    "party asks the receipt of a 副卷 document's event": Case(
        "party", "GET", "/v1/dossiers/{open}/receipts/{secret_version}", 404, "tree_size"
    ),
    "lawyer asks the tlog-proof of a 副卷 document's event": Case(
        "lawyer", "GET", "/v1/dossiers/{open}/receipts/{secret_version}/tlog-proof", 404, "tree_size"
    ),
    "party asks the 存证证书 of a 副卷 document's event": Case(
        "party", "GET", "/v1/dossiers/{open}/receipts/{secret_version}/certificate", 404, "tree_size"
    ),
    "lawyer asks the 存证证书 of a 副卷 file by its hash": Case(
        "lawyer", "GET", "/v1/dossiers/{open}/files/{secret_sha}/certificate", 404, "tree_size"
    ),
    "catalogue in an unknown volume": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_request",
        json={"document_id": "{doc}", "volume": "第三卷", "category": "x", "order": 1, "title": "x"},
    ),
    "catalogue an unknown document": Case(
        "clerk", "POST", D + "/catalogue", 404, "unknown_document",
        json={"document_id": "nope", "volume": "正卷", "category": "x", "order": 1, "title": "x"},
    ),
    "catalogue at a negative order": Case(
        "clerk", "POST", D + "/catalogue", 422, "invalid_request",
        json={"document_id": "{doc}", "volume": "正卷", "category": "x", "order": -1, "title": "x"},
    ),
    "archive with an unknown retention": Case(
        "archivist", "POST", D + "/archive", 422, "invalid_request", json={"retention": "forever"}
    ),
    "archive an archived dossier": Case(
        "archivist", "POST", "/v1/dossiers/{archived}/archive", 409, "dossier_archived", json={"retention": "永久"}
    ),
    # the public log and verification
    "inclusion proof beyond the tree": Case(
        None, "GET", "/v1/log/proof/inclusion?index=99999&size=99999", 404, "tree_size"
    ),
    "inclusion proof with a negative index": Case(
        None, "GET", "/v1/log/proof/inclusion?index=-1&size=1", 422, "invalid_request"
    ),
    "consistency proof backwards": Case(None, "GET", "/v1/log/proof/consistency?from=2&to=1", 404, "tree_size"),
    "timestamp for a negative size": Case(None, "GET", "/v1/log/timestamp?size=-1", 422, "invalid_request"),
    "timestamp no TSA has made": Case(None, "GET", "/v1/log/timestamp?size=99999", 404, "tree_size"),
    "tile path traversal": Case(None, "GET", "/tlog/tile/0/..%2F..%2Fetc", 404, "tile_not_found"),
    "partial tile of width 0": Case(None, "GET", "/tlog/tile/0/000.p/0", 404, "tile_not_found"),
    "verify a malformed hash": Case(None, "POST", "/v1/verify", 422, "invalid_request", json={"sha256": "xyz"}),
    "verify without a body": Case(None, "POST", "/v1/verify", 422, "invalid_request"),
    "receipt of version 0": Case("clerk", "GET", D + "/receipts/0", 404, "tree_size"),
    "receipt of a future version": Case("clerk", "GET", D + "/receipts/99999", 404, "tree_size"),
    "存证证书 of a future version": Case("clerk", "GET", D + "/receipts/99999/certificate", 404, "tree_size"),
    "存证证书 by a malformed file hash": Case("clerk", "GET", D + "/files/XYZ/certificate", 400, "invalid_digest"),
    "存证证书 of a file not in the dossier": Case("clerk", "GET", D + f"/files/{SHA}/certificate", 404, "tree_size"),
    # principals
    "credential for an unknown role": Case(
        "administrator", "POST", "/v1/principals", 422, "invalid_request", json={"name": "x", "role": "emperor"}
    ),
    "revoke the last administrator": Case("administrator", "DELETE", "/v1/principals/{admin_id}", 409,
                                          "last_administrator"),
    "revoke the administrators' list itself": Case(
        "administrator", "DELETE", f"/v1/principals/{ADMINISTRATORS}", 403, "forbidden"
    ),
    "admit the administrators' list to a dossier": Case(
        "clerk", "POST", f"/v1/principals/{ADMINISTRATORS}/admissions", 403, "forbidden", json={"dossier": "{d}"}
    ),
    "admit a clerk to a single dossier": Case(
        "clerk", "POST", "/v1/principals/{clerk_id}/admissions", 403, "forbidden", json={"dossier": "{d}"}
    ),
    # between courts (node-to-node requests are signed; docs/transfer.md)
    "replayed node-to-node request": Case("peer-replayed", "GET", PEER_PACKAGE, 401, "request_replayed"),
    "node-to-node request out of its time window": Case(
        "peer-stale", "GET", PEER_PACKAGE, 401, "request_expired"
    ),
    "node-to-node request signed by another key": Case(
        "peer-forged", "GET", PEER_PACKAGE, 401, "request_signature_invalid"
    ),
    "node-to-node request from a court not trusted": Case(
        "peer-stranger", "GET", PEER_PACKAGE, 401, "peer_unknown"
    ),
    "unsigned node-to-node request": Case(None, "GET", PEER_PACKAGE, 401, "request_unsigned"),
    "node-to-node request addressed to another court": Case(
        "peer-misaddressed", "GET", PEER_PACKAGE, 401, "request_misaddressed"
    ),
    "node-to-node request with a non-digit Sifa-Time": Case(
        "peer-superscript-time", "GET", PEER_PACKAGE, 401, "request_expired"
    ),
    "node-to-node request for a dossier not transferred": Case(
        "peer", "GET", PEER_PACKAGE, 403, "not_transferred"
    ),
    "node-to-node file request for a dossier not received from the caller": Case(
        "peer", "GET", PEER_FILE, 403, "not_received"
    ),
    "node-to-node file request with a malformed SHA-256": Case(
        "peer", "GET", "/v1/peer/dossiers/{d}/files/AB", 400, "invalid_digest"
    ),
    "node-to-node file request for a dossier not held": Case(
        "peer", "GET", "/v1/peer/dossiers/6454039c-0791-518e-bc56-316fcd078efb/files/{corrupt}", 404,
        "dossier_not_found"
    ),
    "unsigned node-to-node file request": Case(None, "GET", PEER_FILE, 401, "request_unsigned"),
    "package that is not a tar": Case("clerk", "POST", "/v1/received", 422, "package_invalid", content=b"not a tar"),
    "empty package": Case("clerk", "POST", "/v1/received", 422, "package_invalid", content=b""),
    "package whose PAX size is -1": Case(
        "clerk", "POST", "/v1/received", 400, "malformed_package", content=tar_with_pax_size(b"-1")
    ),
    "package whose PAX size is not a number": Case(
        "clerk", "POST", "/v1/received", 400, "malformed_package", content=tar_with_pax_size(b"ten")
    ),
    "package whose member claims more bytes than follow": Case(
        "clerk", "POST", "/v1/received", 400, "malformed_package", content=tar_with_pax_size(b"9" * 30)
    ),
    "package whose events line nests 100000 deep": Case(
        "clerk", "POST", "/v1/received", 422, "package_invalid", content=deep_package("line")
    ),
    "package whose event's leaf nests 100000 deep": Case(
        "clerk", "POST", "/v1/received", 422, "package_invalid", content=deep_package("leaf")
    ),
    "package whose disclosures nest 100000 deep": Case(
        "clerk", "POST", "/v1/received", 422, "package_invalid", content=deep_package("disclosures")
    ),
    "retrieve from a court with no peer entry": Case(
        "clerk", "POST", "/v1/retrievals", 422, "unknown_court", json={"from_court": "4401-0101", "dossier": "{d}"}
    ),
    "retrieve with a malformed court code": Case(
        "clerk", "POST", "/v1/retrievals", 422, "invalid_request", json={"from_court": "../..", "dossier": "{d}"}
    ),
    "admit to an unknown dossier": Case(
        "clerk", "POST", "/v1/principals/{lawyer_id}/admissions", 404, "dossier_not_found",
        json={"dossier": "00000000-0000-0000-0000-000000000000"},
    ),
}
# fmt: on


@pytest.fixture(scope="module")
def world(node: Node) -> dict[str, str]:
    h = node.as_("clerk")
    ids = {}
    for key, number in (("d", "（2026）京0105民初8000号"), ("archived", "（2026）京0105民初8001号")):
        r = node.http.post("/v1/dossiers", headers=h, json={"case_number": number, "case_type": "民事"})
        ids[key] = r.json()["dossier"]
    doc = node.http.post(f"/v1/dossiers/{ids['d']}/documents", content=PDF, headers={**h, **up("起诉状.pdf")})
    ids["doc"] = doc.json()["document_id"]
    # A dossier open to the lawyer and the party, with a document in the 副卷.
    r = node.http.post("/v1/dossiers", headers=h, json={"case_number": "（2026）京0105民初8002号", "case_type": "民事"})
    ids["open"] = r.json()["dossier"]
    for who in ("lawyer", "party"):
        r = node.http.post(f"/v1/principals/{node.ids[who]}/admissions", json={"dossier": ids["open"]}, headers=h)
        assert r.status_code == 204, r.text
    declared = up("评议.pdf", **{"X-Doc-Type": quote("合议庭评议笔录")})
    secret = node.http.post(f"/v1/dossiers/{ids['open']}/documents", content=PDF + b" court only",
                            headers={**h, **declared}).json()  # fmt: skip
    ids["secret_doc"], ids["secret_sha"] = secret["document_id"], secret["sha256"]
    ids["secret_version"] = str(secret["version"] - 1)  # its DocumentUploaded event
    assert (
        node.http.post(
            f"/v1/dossiers/{ids['archived']}/archive", headers=node.as_("archivist"), json={"retention": "10"}
        ).status_code
        == 200
    )
    r = node.http.post("/v1/principals", json={"name": "旧", "role": "clerk"}, headers=node.as_("administrator"))
    node.http.delete(f"/v1/principals/{r.json()['id']}", headers=node.as_("administrator"))
    ids["revoked"] = r.json()["token"]
    ids["clerk_id"], ids["lawyer_id"] = node.ids["clerk"], node.ids["lawyer"]
    ids["admin_id"] = str(token_id(node.admin))
    corrupt = node.http.post(f"/v1/dossiers/{ids['d']}/documents", content=b"rots on disk",
                             headers={**h, **up("将损坏.txt", **{"Content-Type": "text/plain"})}).json()  # fmt: skip
    ids["corrupt"] = sha = corrupt["sha256"]
    blob = node.data / "blobs" / "blobs" / sha[:2] / sha[2:4] / sha
    os.chmod(blob, 0o600)
    blob.write_bytes(b"rots on disc")
    with pytest.raises(httpx2.RemoteProtocolError):  # found corrupt, cut, quarantined
        node.http.get(f"/v1/dossiers/{ids['d']}/files/{sha}", headers=h)
    return ids


def _stores(node: Node) -> tuple[int, int]:
    with sqlite3.connect(f"file:{node.data / 'events.sqlite'}?mode=ro", uri=True) as db:
        (events,) = db.execute("SELECT count(*) FROM stored_events").fetchone()
    blobs = sum(1 for p in (node.data / "blobs" / "blobs").rglob("*") if p.is_file())
    return events, blobs


def test_catalogue_has_fifty_named_cases() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, node: Node, world: dict[str, str]) -> None:
    case = CASES[name]
    fill = lambda s: s.format(**world)  # noqa: E731
    headers: dict[str, str | bytes] = dict(case.headers)
    if case.role in node.tokens:
        headers.update(node.as_(case.role))
    elif case.role == "raw-token":
        headers["Authorization"] = node.tokens["clerk"]
    elif case.role == "forged":
        headers["Authorization"] = "Bearer sifa_" + "A" * 43
    elif case.role == "revoked":
        headers["Authorization"] = f"Bearer {world['revoked']}"
    elif case.role and case.role.startswith("peer"):
        headers.update(_peer_headers(node, case.role, fill(case.path)))
    body: dict[str, Any] = {}
    if case.json is not None:
        body["json"] = _fill_json(case.json, fill)
    if case.content is not None:
        body["content"] = case.content() if callable(case.content) else case.content
    before = _stores(node)
    r = node.http.request(case.method, fill(case.path), headers=headers, **body)
    assert (r.status_code, r.json().get("code")) == (case.status, case.code), r.text
    assert set(r.json()) == {"code", "message", "detail"}
    assert _stores(node) == before  # nothing recorded, nothing half-written


def _peer_headers(node: Node, role: str, path: str) -> dict[str, str | bytes]:
    """A signed node-to-node request as the case names it (a valid one, replayed, stale, forged...)."""
    signer = {"peer-forged": Ed25519Signer.generate(PEER.name),
              "peer-stranger": Ed25519Signer.generate("sifa.court/4401-0101")}.get(role, PEER)  # fmt: skip
    to = "sifa.court/1100-0000" if role == "peer-misaddressed" else "sifa.court/1101-0105"  # the node's own
    signed = sign_request(signer, "GET", path, to=to, now=time.time() - 3600 if role == "peer-stale" else None)
    if role == "peer-replayed":  # the first time it is taken (and refused: not transferred)
        assert node.http.get(path, headers=signed).status_code == 403
    headers: dict[str, str | bytes] = dict(signed)
    if role == "peer-superscript-time":  # "²".isdigit() is true; int() refuses it (it was a 500)
        headers["Sifa-Time"] = "²".encode("latin-1")
    return headers


def _fill_json(value: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fill(value) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill_json(v, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, fill) for v in value]
    return value
