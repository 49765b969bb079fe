"""One court log and three witness nodes, each its own ``sifa serve`` on 127.0.0.1.

Receipts verify with a 2-of-3 quorum; with one witness down they still reach it; with two down the
verifier reports the missing quorum.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.nodes import Serve, init, trust_entry
from verifier.cli import main as sifa_verify

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Serve, list[Serve], str, Path]]:
    admin = init(tmp_path / "log", "1101-0105", "北京市朝阳区人民法院")
    courts = [
        ("1101-0200", "北京市第三中级人民法院"),
        ("1100-0000", "北京市高级人民法院"),
        ("1101-0300", "北京市方圆公证处"),
    ]
    for court, name in courts:
        init(tmp_path / court, court, name)
    logs = {"format": "sifa-trust/1", "logs": [trust_entry(tmp_path / "log")]}
    (tmp_path / "logs.json").write_text(json.dumps(logs, ensure_ascii=False), encoding="utf-8")
    witnesses: list[Serve] = []
    try:
        for court, _ in courts:
            witnesses.append(Serve(tmp_path / court, SIFA_WITNESS_LOGS=str(tmp_path / "logs.json")))
        trust = {**logs, "quorum": 2, "witnesses": [
            {**trust_entry(tmp_path / court, "--witness"), "url": f"{w.url}/witness"}
            for (court, _), w in zip(courts, witnesses, strict=True)]}  # fmt: skip
        (tmp_path / "trust.json").write_text(json.dumps(trust, ensure_ascii=False), encoding="utf-8")
        log = Serve(tmp_path / "log", SIFA_WITNESSES=str(tmp_path / "trust.json"), SIFA_SEAL_INTERVAL_SECONDS="0.02",
                    SIFA_WITNESS_INTERVAL_SECONDS="0.2")  # fmt: skip
        try:
            yield log, witnesses, admin, tmp_path
        finally:
            log.stop()
    finally:
        for w in witnesses:
            w.stop()


def _verify(receipt: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sifa_verify(["--receipt", str(path), "--trust", str(tmp_path / "trust.json"), "--json"])
    result: dict[str, Any] = json.loads(out.getvalue())
    return code, result


@pytest.mark.slow
def test_receipts_verify_with_a_quorum_of_witnesses_until_too_few_are_up(
    network: tuple[Serve, list[Serve], str, Path],
) -> None:
    log, witnesses, admin, tmp_path = network
    with httpx2.Client(base_url=log.url, timeout=30) as http:
        token = http.post("/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "书记员", "role": "clerk"}).json()["token"]  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        d = http.post("/v1/dossiers", headers=auth, json={"case_number": "（2026）京0105民初77号",
                                                          "case_type": "民事"}).json()["dossier"]  # fmt: skip

        def register(n: int) -> int:
            r = http.post(
                f"/v1/dossiers/{d}/evidence",
                headers=auth,
                json={
                    "sha256": f"{n:064x}",
                    "size": n,
                    "name": f"证据{n}.pdf",
                    "submitter": {"role": "原告", "name": "张三"},
                },
            )
            assert r.status_code == 200, r.text
            version: int = r.json()["version"]
            return version

        def receipt_when(version: int, want: int, within: float) -> tuple[int, dict[str, Any]]:
            deadline = time.monotonic() + within
            while True:
                r = http.get(f"/v1/dossiers/{d}/receipts/{version}", headers=auth)
                if r.status_code == 200:
                    code, result = _verify(r.json(), tmp_path)
                    if code == want or time.monotonic() > deadline:
                        return code, result
                elif time.monotonic() > deadline:
                    raise AssertionError(r.text)
                time.sleep(0.2)

        code, result = receipt_when(register(1), 0, 30)
        assert code == 0, result
        assert [c["check"] for c in result["checks"]] == ["receipt", "witnesses", "disclosures"]

        witnesses[2].stop()
        code, result = receipt_when(register(2), 0, 30)
        assert code == 0, result  # two of three are enough

        witnesses[1].stop()
        code, result = receipt_when(register(3), 1, 5)
        assert code == 1
        failed = [c for c in result["checks"] if not c["ok"]]
        assert [c["code"] for c in failed] == ["witness_quorum_missing"]
        assert "sifa.witness/1100-0000" in failed[0]["detail"]
