"""Setting a node up from the command line: the credential file, courts, peers, the lawyer's trust file."""

from __future__ import annotations

import contextlib
import io
import json
import stat
from pathlib import Path

import pytest

from api.cli import main as sifa
from ledger.trust import read_trust

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_two_courts_set_up_with_commands_only(tmp_path: Path) -> None:
    low, mid = tmp_path / "low", tmp_path / "mid"
    code, out, err = _run("init", str(low), "--court", "1101-0105", "--name", "北京市朝阳区人民法院",
                          "--designator", "京0105", "--credential-file", str(tmp_path / "low.credential"))  # fmt: skip
    assert code == 0, err
    assert out == "" and str((tmp_path / "low.credential").resolve()) in err  # the credential is not printed
    credential = tmp_path / "low.credential"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600 and credential.read_text().startswith("sifa_")
    code, _, err = _run("init", str(tmp_path / "x"), "--court", "1101-0106", "--name", "x", "--credential-file",
                        str(credential))  # fmt: skip
    assert code == 2 and "exists" in err and not (tmp_path / "x").exists()  # refused before anything is made
    assert _run("init", str(mid), "--court", "1101-0200", "--name", "北京市第三中级人民法院")[0] == 0

    # Each court learns the other: registry and peers, from the other's trust entry.
    assert _run("courts", "add", "--data-dir", str(low), "--code", "1101-0200", "--name", "北京市第三中级人民法院",
                "--level", "中级", "--designator", "京03")[0] == 0  # fmt: skip
    code, _, err = _run("courts", "add", "--data-dir", str(low), "--code", "1101-0200", "--name", "again",
                        "--level", "中级")  # fmt: skip
    assert code == 2 and "already" in err
    assert _run("courts", "add", "--data-dir", str(low), "--code", "11010200", "--name", "x", "--level", "中级")[0] == 2
    listed = _run("courts", "list", "--data-dir", str(low))[1]
    assert "1101-0105\t基层\t京0105\t北京市朝阳区人民法院" in listed and "1101-0200\t中级\t京03" in listed
    entry = tmp_path / "mid-entry.json"
    entry.write_text(_run("trust-entry", str(mid))[1], encoding="utf-8")
    peers = tmp_path / "low-peers.json"
    assert _run("peers", "add", str(entry), "--url", "https://sifa.1101-0200.example", "--peers", str(peers))[0] == 0
    assert _run("peers", "add", str(entry), "--url", "https://x.example", "--peers", str(peers))[0] == 2  # twice
    assert _run("peers", "add", str(entry), "--url", "http://x.example", "--peers", str(tmp_path / "p2"))[0] == 2
    assert read_trust(peers).log_urls == {"sifa.court/1101-0200": "https://sifa.1101-0200.example"}
    assert "sifa.court/1101-0200\thttps://sifa.1101-0200.example" in _run("peers", "list", "--peers", str(peers))[1]

    # The lawyer's trust file, with the witnesses and quorum the court's checkpoints need.
    witnesses = tmp_path / "witnesses.json"
    witness_entry = json.loads(_run("trust-entry", str(mid), "--witness")[1])
    witnesses.write_text(json.dumps({"witnesses": [{**witness_entry, "url": "https://w.example"}], "quorum": 1}))
    code, _, err = _run("trust-file", str(low), "--witnesses", str(witnesses), "--out", str(tmp_path / "t.json"))
    assert code == 0, err
    trust = read_trust(tmp_path / "t.json")
    assert [v.name for v in trust.logs] == ["sifa.court/1101-0105"] and trust.quorum == 1 and len(trust.witnesses) == 1
    assert "url" not in (tmp_path / "t.json").read_text()  # a lawyer's file names keys, not servers


@pytest.mark.parametrize("line", ["sifa init data --court 1101-0105", "data/administrator.credential"])
def test_make_serve_and_the_readme_say_where_the_credential_is(line: str) -> None:
    assert line in (ROOT / "Makefile").read_text(encoding="utf-8").replace(" \\\n\t\t", " ")
    assert "data/administrator.credential" in (ROOT / "README.md").read_text(encoding="utf-8")
