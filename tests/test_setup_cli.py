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


def _tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root``: its mode and bytes (to see that a refusal touched nothing)."""
    return {str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}  # fmt: skip


def _refused(code: int, err: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("北京\udcff法院", []),  # a lone surrogate: once a traceback, with log.key and events.key left behind
        ("", []),
        ("法院\n第二行", []),
        ("院" * 5000, []),
        (
            "北京市朝阳区人民法院",
            ["--credential-file", "missing/dir/admin.credential"],
        ),  # once: node made, credential lost
    ],
    ids=["surrogate", "empty", "newline", "5000 chars", "credential dir missing"],
)
def test_init_refuses_bad_input_before_making_anything(tmp_path: Path, name: str, extra: list[str]) -> None:
    data = tmp_path / "data"
    extra = [str(tmp_path / e) if e.startswith("missing") else e for e in extra]
    _refused(*_run("init", str(data), "--court", "1101-0105", "--name", name, *extra)[::2])
    assert not data.exists()
    code, _, err = _run("init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院")
    assert code == 0, err  # a second try starts clean


def test_init_on_a_regular_file_leaves_it_as_it_was(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    afile.chmod(0o644)
    _refused(*_run("init", str(afile), "--court", "1101-0105", "--name", "法院")[::2])
    assert stat.S_IMODE(afile.stat().st_mode) == 0o644 and afile.read_text() == "mine"


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    code, _, err = _run("init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院",
                        "--designator", "京0105")  # fmt: skip
    assert code == 0, err
    return data


COURT = ["--code", "1101-0200", "--level", "中级"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--name", "北京\udcff法院", *COURT],
        ["--name", "第三中级\n人民法院", *COURT],
        ["--name", "院" * 5000, *COURT],
        ["--name", "  ", *COURT],
        ["--name", "北京市第三中级人民法院", *COURT, "--parent", "1101-0200"],
        ["--name", "北京市第三中级人民法院", *COURT, "--designator", "京0105"],  # the node's own 代字
    ],
    ids=["surrogate", "newline", "5000 chars", "blank", "its own parent", "a 代字 in use"],
)
def test_courts_add_refuses_bad_input_touching_nothing(node_dir: Path, argv: list[str]) -> None:
    before = _tree(node_dir)
    _refused(*_run("courts", "add", "--data-dir", str(node_dir), *argv)[::2])
    assert _tree(node_dir) == before  # no courts.json.tmp, courts.json unchanged


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"courts": [{"code": "1101-0105", "nom": "x"}]}',
                                     b"\xff\xfe"], ids=["not json", "a list", "unknown key", "not utf-8"])  # fmt: skip
@pytest.mark.parametrize("action", ["list", "add"])
def test_courts_with_a_broken_registry_exit_2(node_dir: Path, content: bytes, action: str) -> None:
    (node_dir / "courts.json").write_bytes(content)
    before = _tree(node_dir)
    argv = [] if action == "list" else ["--name", "北京市第三中级人民法院", *COURT]
    _refused(*_run("courts", action, "--data-dir", str(node_dir), *argv)[::2])
    assert _tree(node_dir) == before


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"logs": [{"url": "https://x.example"}]}'],
                         ids=["not json", "a list", "an entry without its key"])  # fmt: skip
@pytest.mark.parametrize("action", ["list", "add"])
def test_peers_with_a_broken_file_exit_2(node_dir: Path, tmp_path: Path, content: bytes, action: str) -> None:
    peers = tmp_path / "peers.json"
    peers.write_bytes(content)
    entry = tmp_path / "entry.json"
    entry.write_text(_run("trust-entry", str(node_dir))[1], encoding="utf-8")
    argv = [] if action == "list" else [str(entry), "--url", "https://x.example"]
    _refused(*_run("peers", action, "--peers", str(peers), *argv)[::2])
    assert peers.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["entry.json", "node",
                                                                                           "peers.json"]  # fmt: skip


@pytest.mark.parametrize("url", ["https://a b", "https://", "https://x.example:port", "https://x.example/?q=1"])
def test_peers_add_refuses_a_url_that_is_not_one(node_dir: Path, tmp_path: Path, url: str) -> None:
    entry = tmp_path / "entry.json"
    entry.write_text(_run("trust-entry", str(node_dir))[1], encoding="utf-8")
    _refused(*_run("peers", "add", str(entry), "--url", url, "--peers", str(tmp_path / "peers.json"))[::2])
    assert not (tmp_path / "peers.json").exists()


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"witnesses": "x", "quorum": 1}'])
def test_trust_file_with_a_broken_witnesses_file_exits_2(node_dir: Path, tmp_path: Path, content: bytes) -> None:
    witnesses = tmp_path / "w.json"
    witnesses.write_bytes(content)
    _refused(*_run("trust-file", str(node_dir), "--witnesses", str(witnesses), "--out", str(tmp_path / "t.json"))[::2])
    assert not (tmp_path / "t.json").exists()
