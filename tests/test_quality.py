"""Lint, format, types and the dependency direction run inside the test command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "cmd",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("lint-imports",),
        (sys.executable, "-m", "mypy"),
    ],
    ids=["ruff-check", "ruff-format", "import-linter", "mypy-strict"],
)
def test_tool_is_clean(cmd: tuple[str, ...]) -> None:
    if cmd[0] != sys.executable:
        assert shutil.which(cmd[0]), f"{cmd[0]} is not installed: pip install -e '.[test]'"
    result = _run(*cmd)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_linter_would_catch_a_wrong_way_import(tmp_path: Path) -> None:
    """The contracts are live: a ledger module importing api breaks them."""
    bad = ROOT / "ledger" / "_wrong_way_probe.py"
    bad.write_text("import api  # noqa: F401\n")
    try:
        result = _run("lint-imports", "--no-cache")
    finally:
        bad.unlink()
    assert result.returncode != 0
    assert "ledger is the bottom layer" in result.stdout
