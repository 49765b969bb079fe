"""A small filesystem the test mounts itself (tmpfs of a few MiB), to fill a disk for real.

Mounting needs CAP_SYS_ADMIN: CI runs the suite as root. Where mounting is impossible the test
is skipped with the reason (never in CI, where a skip would hide the drill).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


@contextlib.contextmanager
def small_disk(path: Path, mebibytes: int) -> Iterator[Path]:
    """``path`` (created), with a tmpfs of ``mebibytes`` MiB mounted on it for the block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mebibytes}m,mode=0700", "sifa-test", str(path)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}); needs root"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
