"""The bad input catalogue: one named case each, its documented error code, and stores unchanged.

Every case runs against a real node over HTTP; before and after it the event store, the blob
store and the dossier's history are compared (nothing recorded is lost or half-written).
"""

from __future__ import annotations

import sqlite3
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from api.peers import sign_request
from ledger.note import Ed25519Signer
from tests.api_node import PEER, Node

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
    headers: dict[str, str] = field(default_factory=dict)


def up(name: str = "证据.pdf", **headers: str) -> dict[str, str]:
    return {"X-File-Name": quote(name), "Content-Type": "application/pdf", **headers}


PARTY = {"role": "原告", "name": "张三"}
EVID = {"sha256": SHA, "size": 10, "name": "合同.pdf", "submitter": PARTY}
SERVICE = {"document_id": "{doc}", "recipient": PARTY, "channel": "电子送达平台", "sent_at": "2026-11-22T08:00:00Z"}


def big() -> Any:
    return (b"x" * (1 << 20) for _ in range(21))


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


D = "/v1/dossiers/{d}"
PEER_PACKAGE = "/v1/peer/dossiers/{d}/package"
# fmt: off
CASES: dict[str, Case] = {
    # credentials and roles
    "no credential": Case(None, "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "bearer prefix missing": Case("raw-token", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "forged credential": Case("forged", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "revoked credential": Case("revoked", "POST", "/v1/dossiers", 401, "unauthenticated", json={}),
    "lawyer opens a dossier": Case("lawyer", "POST", "/v1/dossiers", 403, "forbidden", json={}),
    "lawyer reads a dossier not admitted to": Case("lawyer", "GET", D, 403, "dossier_not_admitted"),
    "party uploads to a dossier not admitted to": Case(
        "party", "POST", D + "/documents", 403, "dossier_not_admitted", content=PDF, headers=up()
    ),
    "clerk archives": Case("clerk", "POST", D + "/archive", 403, "forbidden", json={"retention": "永久"}),
    "judge issues credentials": Case(
        "judge", "POST", "/v1/principals", 403, "forbidden", json={"name": "x", "role": "clerk"}
    ),
    # opening a dossier
    "case number with ASCII brackets missing": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_input",
        json={"case_number": "2026京0105民初1号", "case_type": "民事"},
    ),
    "case number with full-width digits": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_input",
        json={"case_number": "（２０２６）京0105民初1号", "case_type": "民事"},
    ),
    "case number without 号": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_input",
        json={"case_number": "（2026）京0105民初1", "case_type": "民事"},
    ),
    "empty case number": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_input", json={"case_number": "", "case_type": "民事"}
    ),
    "case number of 10,000 characters": Case(
        "clerk", "POST", "/v1/dossiers", 422, "invalid_request", json={"case_number": "号" * 10000, "case_type": "民事"}
    ),
    "unknown case type": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_input",
        json={"case_number": "（2026）京0105民初9001号", "case_type": "外星"},
    ),
    "case already open": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        409,
        "dossier_exists",
        json={"case_number": "（2026）京0105民初8000号", "case_type": "民事"},
    ),
    "party without a name": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_request",
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
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_request",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    ),
    "201 parties": Case(
        "clerk",
        "POST",
        "/v1/dossiers",
        422,
        "invalid_request",
        json={"case_number": "（2026）京0105民初9004号", "case_type": "民事", "parties": [PARTY] * 201},
    ),
    # uploads
    "declared hash is not the content's": Case(
        "clerk", "POST", D + "/documents", 422, "digest_mismatch", content=PDF, headers=up(**{"X-Content-SHA256": SHA})
    ),
    "declared hash is not hex": Case(
        "clerk",
        "POST",
        D + "/documents",
        400,
        "invalid_digest",
        content=PDF,
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
    "file name that is not UTF-8": Case(
        "clerk",
        "POST",
        D + "/documents",
        400,
        "invalid_encoding",
        content=PDF,
        headers={"X-File-Name": "%FF%FE.pdf", "Content-Type": "application/pdf"},
    ),
    "file name missing": Case(
        "clerk",
        "POST",
        D + "/documents",
        422,
        "invalid_request",
        content=PDF,
        headers={"Content-Type": "application/pdf"},
    ),
    "multipart body": Case(
        "clerk",
        "POST",
        D + "/documents",
        415,
        "unsupported_media_type",
        content=PDF,
        headers=up(**{"Content-Type": "multipart/form-data; boundary=x"}),
    ),
    "media type without a subtype": Case(
        "clerk",
        "POST",
        D + "/documents",
        415,
        "unsupported_media_type",
        content=PDF,
        headers=up(**{"Content-Type": "pdf"}),
    ),
    "oversized streamed upload": Case(
        "clerk", "POST", D + "/documents", 413, "payload_too_large", content=big, headers=up("大.bin")
    ),
    "upload to an unknown dossier": Case(
        "clerk",
        "POST",
        "/v1/dossiers/00000000-0000-0000-0000-000000000000/documents",
        404,
        "dossier_not_found",
        content=PDF,
        headers=up(),
    ),
    "upload to a malformed dossier id": Case(
        "clerk", "POST", "/v1/dossiers/../documents", 404, "not_found", content=PDF, headers=up()
    ),
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
    "evidence size not an integer": Case(
        "clerk", "POST", D + "/evidence", 422, "invalid_request", json={**EVID, "size": 1.5}
    ),
    "evidence without submitter": Case(
        "clerk",
        "POST",
        D + "/evidence",
        422,
        "invalid_request",
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
    "contract without parties": Case(
        "clerk",
        "POST",
        D + "/contracts",
        422,
        "invalid_request",
        json={"contract_sha256": SHA, "parties": [], "signed_at": "2026-01-01T00:00:00Z"},
    ),
    # transfers, catalogue, archive
    "transfer to an unknown court": Case(
        "judge",
        "POST",
        D + "/transfers",
        422,
        "unknown_court",
        json={"to_court": "9999-0001", "kind": "上诉", "reason": "上诉"},
    ),
    "transfer of an unknown kind": Case(
        "judge",
        "POST",
        D + "/transfers",
        422,
        "invalid_request",
        json={"to_court": "1101-0200", "kind": "流放", "reason": "x"},
    ),
    "transfer with a blank reason": Case(
        "judge",
        "POST",
        D + "/transfers",
        422,
        "invalid_input",
        json={"to_court": "1101-0200", "kind": "上诉", "reason": "   "},
    ),
    "catalogue in an unknown volume": Case(
        "clerk",
        "POST",
        D + "/catalogue",
        422,
        "invalid_request",
        json={"document_id": "{doc}", "volume": "第三卷", "category": "x", "order": 1, "title": "x"},
    ),
    "catalogue an unknown document": Case(
        "clerk",
        "POST",
        D + "/catalogue",
        404,
        "unknown_document",
        json={"document_id": "nope", "volume": "正卷", "category": "x", "order": 1, "title": "x"},
    ),
    "catalogue at a negative order": Case(
        "clerk",
        "POST",
        D + "/catalogue",
        422,
        "invalid_request",
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
    "tile path traversal": Case(None, "GET", "/tlog/tile/0/..%2F..%2Fetc", 404, "tile_not_found"),
    "partial tile of width 0": Case(None, "GET", "/tlog/tile/0/000.p/0", 404, "tile_not_found"),
    "verify a malformed hash": Case(None, "POST", "/v1/verify", 422, "invalid_request", json={"sha256": "xyz"}),
    "verify without a body": Case(None, "POST", "/v1/verify", 422, "invalid_request"),
    "receipt of version 0": Case("clerk", "GET", D + "/receipts/0", 404, "tree_size"),
    "receipt of a future version": Case("clerk", "GET", D + "/receipts/99999", 404, "tree_size"),
    # principals
    "credential for an unknown role": Case(
        "administrator", "POST", "/v1/principals", 422, "invalid_request", json={"name": "x", "role": "emperor"}
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
    "node-to-node request for a dossier not transferred": Case(
        "peer", "GET", PEER_PACKAGE, 403, "not_transferred"
    ),
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
    "retrieve from a court with no peer entry": Case(
        "clerk", "POST", "/v1/retrievals", 422, "unknown_court", json={"from_court": "4401-0101", "dossier": "{d}"}
    ),
    "retrieve with a malformed court code": Case(
        "clerk", "POST", "/v1/retrievals", 422, "invalid_request", json={"from_court": "../..", "dossier": "{d}"}
    ),
    "admit to an unknown dossier": Case(
        "clerk",
        "POST",
        "/v1/principals/{lawyer_id}/admissions",
        404,
        "dossier_not_found",
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
    headers = dict(case.headers)
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


def _peer_headers(node: Node, role: str, path: str) -> dict[str, str]:
    """A signed node-to-node request as the case names it (a valid one, replayed, stale, forged...)."""
    signer = {"peer-forged": Ed25519Signer.generate(PEER.name),
              "peer-stranger": Ed25519Signer.generate("sifa.court/4401-0101")}.get(role, PEER)  # fmt: skip
    headers = sign_request(signer, "GET", path, now=time.time() - 3600 if role == "peer-stale" else None)
    if role == "peer-replayed":  # the first time it is taken (and refused: not transferred)
        assert node.http.get(path, headers=headers).status_code == 403
    return headers


def _fill_json(value: Any, fill: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fill(value) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill_json(v, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, fill) for v in value]
    return value
