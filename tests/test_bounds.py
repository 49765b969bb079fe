"""Nothing anyone sends stops the log: every command's leaf fits, every text field is bounded and clean."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from dossier.errors import InvalidDossierInputError
from ledger.errors import LeafTooLargeError
from tests.api_node import Node
from tests.dossier_fixtures import Stack, pdf_bytes

ACT = {"actor": "clerk:li", "role": "clerk"}


def _full_party(n: int) -> dict[str, str]:
    return {"role": "原告" * 25, "name": "张" * 200, "id_number": f"{n:018d}", "phone": "1" * 64, "address": "址" * 500}


def test_a_dossier_of_200_full_parties_is_refused_and_the_log_seals(stack: Stack) -> None:
    """The clerk's attack: 200 parties, every field filled, made a leaf of ~110 kB that no pass could seal."""
    app = stack.app
    with pytest.raises((InvalidDossierInputError, LeafTooLargeError)):
        app.open_dossier(case_number_text="（2026）京0105民初1号", case_type="民事",
                         parties=[_full_party(n) for n in range(200)], **ACT)  # fmt: skip
    app.open_dossier(case_number_text="（2026）京0105民初2号", case_type="民事", parties=[_full_party(1)], **ACT)
    stack.sealer.seal()
    assert stack.log.size == 1


def _wait_receipt(node: Node, dossier: str, version: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        r = node.http.get(f"/v1/dossiers/{dossier}/receipts/{version}", headers=node.as_("clerk"))
        if r.status_code == 200 or time.monotonic() > deadline:
            return r.status_code
        time.sleep(0.05)


def test_a_70000_character_doc_type_is_refused_and_the_log_seals(node: Node) -> None:
    """The lawyer's attack: a 70,000-character X-Doc-Type was accepted (201) and stopped the log for good."""
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"),
                       json={"case_number": "（2026）京0105民初70000号", "case_type": "民事"})  # fmt: skip
    d = r.json()["dossier"]
    assert node.http.post(f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d},
                          headers=node.as_("clerk")).status_code == 204  # fmt: skip
    h = {**node.as_("lawyer"), "X-File-Name": quote("证据.pdf"), "Content-Type": "application/pdf"}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1),
                       headers={**h, "X-Doc-Type": quote("证" * 70000)})  # fmt: skip
    assert r.status_code in (413, 422), r.text
    assert r.json()["code"] in ("invalid_request", "invalid_input", "leaf_too_large")
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1), headers=h)
    assert r.status_code == 201, r.text
    assert _wait_receipt(node, d, r.json()["version"]) == 200  # the log still seals
