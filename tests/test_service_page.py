"""The 送达核验 page (/service) in a real browser (Debian's Chromium, driven by Playwright): a served
document is checked by its hash, computed in the page; the 送达码 shows the recipient; the document's
bytes never reach the node. A screenshot goes to artifacts/browser/."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.nodes import Node, node  # noqa: F401  (the fixture)
from tests.test_service import check
from tests.test_verify_page import ARTIFACTS

NOTICE = "（2026）京0105民初10号 开庭传票\n定于2026年12月10日开庭。\n".encode()


def test_service_page_checks_a_served_document(node: Node, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    clerk = node.as_("clerk")
    r = node.http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初10号", "case_type": "民事",
                                             "parties": [{"role": "被告", "name": "郑九"}]}, headers=clerk)  # fmt: skip
    dossier = r.json()["dossier"]
    up = node.http.post(f"/v1/dossiers/{dossier}/documents", content=NOTICE,
                        headers={**clerk, "X-File-Name": quote("传票.txt"), "Content-Type": "text/plain"})  # fmt: skip
    body = {"document_id": up.json()["document_id"], "channel": "短信", "sent_at": "2026-11-23T09:00:00+08:00",
            "delivered_at": "2026-11-23T09:00:03+08:00", "party": 0}  # fmt: skip
    r = node.http.post(f"/v1/dossiers/{dossier}/service-records", json=body, headers=clerk)
    assert r.status_code == 201, r.text
    code = r.json()["service_code"]
    assert check(node, hashlib.sha256(NOTICE).hexdigest())["served"]  # sealed
    file = tmp_path / "传票.txt"
    file.write_bytes(NOTICE)
    page = browser.new_page()
    sent: list[bytes] = []
    page.on("request", lambda req: sent.append(req.post_data_buffer or b""))
    try:
        page.goto(f"{node.base}/service")
        page.set_input_files("#file", str(file))
        page.click("#go")
        page.wait_for_selector("#verdict")
        text = page.inner_text("#result")
        assert "由北京市朝阳区人民法院送达" in text and "短信" in text
        assert "2026-11-23 09:00:00（北京时间）" in text and "2026-11-23 09:00:03（北京时间）" in text
        assert "（需送达码）" in text and "郑九" not in text
        page.fill("#code", code)
        page.click("#go")
        page.wait_for_selector("#result dd:has-text('被告 郑九')")  # no wait_for_function: the CSP forbids eval
        assert "被告 郑九" in page.inner_text("#result")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "service-check.png"), full_page=True)
    finally:
        page.close()
    assert sent and not any(NOTICE in b for b in sent)  # only the hash (and the code) left the browser
