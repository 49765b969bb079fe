"""The console (/console) in headless Chromium, end to end: a clerk finds a dossier, uploads a file,
admits a lawyer; the lawyer signs in, sees only that dossier, opens it and downloads the file.
Screenshots go to artifacts/console/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2

from tests.dossier_fixtures import pdf_bytes
from tests.nodes import ROOT, Node
from tests.test_day import day, opened  # noqa: F401 - the module-scoped node with a court 代字

ARTIFACTS = ROOT / "artifacts" / "console"


def _sign_in(browser: Any, node: Node, role: str) -> Any:
    page = browser.new_page(viewport={"width": 1100, "height": 1200}, accept_downloads=True)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{node.base}/console")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#token", node.tokens[role])
    page.click("#go")
    page.wait_for_selector("#work:not([hidden])")
    page.errors = errors
    return page


def test_a_clerk_and_a_lawyer_in_the_console(day: Node, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d = opened(day, "（2025）京0105民初701号", name="孙八")
    other = opened(day, "（2025）京0105民初702号")
    page = _sign_in(browser, day, "clerk")
    assert "clerk" in page.inner_text("#who")
    page.fill("#q", "(2025)京0105民初0701号")  # however typed
    page.click("#search button")
    page.wait_for_selector(f"tr[data-id='{d}']")
    assert page.locator("#list tbody tr").count() == 1
    page.click(f"tr[data-id='{d}']")
    page.wait_for_selector("#dossier:not([hidden])")
    assert page.inner_text("#case") == "（2025）京0105民初701号"
    file = tmp_path / "民事起诉状.pdf"
    file.write_bytes(pdf_bytes(2))
    page.set_input_files("#files", str(file))
    page.wait_for_selector("#catalogue tr[data-doc]")
    assert "民事起诉状" in page.inner_text("#catalogue") and "上传文件" in page.inner_text("#timeline")
    assert "北京时间" in page.inner_text("#timeline")
    page.fill("#principal", day.ids["lawyer"])
    page.click("#admit button")
    page.locator("#note", has_text="已准许").wait_for()  # (wait_for_function would need eval: the CSP forbids it)
    page.screenshot(path=str(ARTIFACTS / "clerk.png"), full_page=True)
    page.click("#lang")
    assert page.inner_text("h1") == "E-dossiers" and page.get_attribute("html", "lang") == "en"
    page.locator("#timeline", has_text="Document uploaded").wait_for()
    page.screenshot(path=str(ARTIFACTS / "clerk-en.png"), full_page=True)
    assert page.errors == []
    page.close()

    page = _sign_in(browser, day, "lawyer")
    ids = [r.get_attribute("data-id") for r in page.query_selector_all("#list tbody tr")]
    assert d in ids and other not in ids
    page.click(f"tr[data-id='{d}']")
    page.wait_for_selector("#catalogue tr[data-doc]")
    assert page.is_hidden("#admit")  # only a clerk admits
    with page.expect_download() as got:
        page.click("#catalogue button[data-file]")
    assert Path(got.value.path()).read_bytes() == file.read_bytes()
    page.screenshot(path=str(ARTIFACTS / "lawyer.png"), full_page=True)
    page.close()


def test_the_console_is_locked_down(day: Node) -> None:  # noqa: F811
    r = httpx2.get(f"{day.base}/console")
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in r.text and "onclick" not in r.text  # no inline script: the policy allows none
    assert httpx2.get(f"{day.base}/console/nope.js").status_code == 404
