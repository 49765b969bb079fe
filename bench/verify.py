"""The lawyer's verifier on a 1 GiB file and its receipt vs ``sha256sum`` of the same file.

    python -m bench verify [--size-mib 1024] [--repeat 3]

Best of ``--repeat`` each, page cache dropped before each run where allowed.
Goal: sifa-verify time / sha256sum time <= 1.1. OpenSSL's sha256 is shown too:
coreutils' sha256sum on this machine does not use the CPU's SHA extensions.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import machine, now, table
from bench.storage import best, make_file


def run(size_mib: int, repeat: int, work: Path) -> str:
    from ledger.log import MerkleLog
    from ledger.note import Ed25519Signer
    from ledger.sqlite import SQLiteTreeStore
    from verifier.cli import main as sifa_verify

    src = work / "evidence.bin"
    make_file(src, size_mib << 20)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    signer = Ed25519Signer("sifa.court/1101-0105", bytes(range(32)))
    log = MerkleLog(SQLiteTreeStore(work / "t.db"))
    log.append([json.dumps({"i": i}).encode() for i in range(999)])
    leaf = {"type": "DocumentUploaded", "time": "2026-11-22T08:30:00Z", "body": {"sha256": digest}}
    log.append([json.dumps(leaf).encode()])  # 存证时间 is the leaf's own time
    log.sign_checkpoint(signer)
    (work / "r.json").write_text(log.receipt(999, "2026-11-22T08:30:00Z").to_json(), encoding="utf-8")
    (work / "t.json").write_text(json.dumps({"logs": [{"key": signer.verifier.vkey()}]}), encoding="utf-8")

    def ours() -> None:
        with contextlib.redirect_stderr(io.StringIO()):
            code = sifa_verify([str(src), "--receipt", str(work / "r.json"), "--trust", str(work / "t.json")])
        assert code == 0

    t_ours = best(ours, repeat)
    t_sum = best(lambda: subprocess.run(["sha256sum", str(src)], check=True, capture_output=True), repeat)
    t_ssl = best(
        lambda: subprocess.run(["openssl", "dgst", "-sha256", str(src)], check=True, capture_output=True), repeat
    )
    rows = [
        (f"verify {size_mib} MiB + receipt (s)", f"{t_ours:.2f}", f"{t_sum:.2f} (sha256sum)", f"{t_ours / t_sum:.2f}"),
        (f"verify {size_mib} MiB + receipt (s)", f"{t_ours:.2f}", f"{t_ssl:.2f} (openssl sha256)",
         f"{t_ours / t_ssl:.2f}"),
    ]  # fmt: skip
    return (table("Verifier (bench/verify.py)", rows) + "\n\nRatio = sifa-verify time / baseline time; "
            f"goal <= 1.1 against sha256sum. Best of {repeat}.\n\nMachine: {machine()}; {now()}.")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench verify")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-"))
    try:
        print(run(args.size_mib, args.repeat, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
