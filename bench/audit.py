"""Audit figures: ``sifa audit``'s pass over the log — time and peak memory — next to a plain hashlib loop.

    python -m bench audit [--leaves 10000000] [--dir DIR] [--warm]

Build (not timed): N leaves of 64 bytes appended in batches of 100k straight through
``MerkleLog.append`` on the SQLite tree store, a signed checkpoint every 1M leaves and at the end.
Timed, each in a fresh child process after the kernel page cache is dropped (where allowed; not
with ``--warm``, which the test suite's smoke run uses):

- sifa: ``dossier.audit.audit_log``, the part of ``sifa audit`` that walks the log: every entry read
  from the store a page of bundles at a time, hashed and streamed through a compact range, the root
  of each checkpoint's size compared with the stored tiles' root and the checkpoint's.
- baseline: the RFC 9162 root of the same leaves by a plain hashlib loop (a stack of subtree
  hashes, the leaves generated in memory batch by batch: no store, no reading, no checks).

Peak memory: the child's ``ru_maxrss`` at the end, and its growth over the pass (from after start-up).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import drop_page_cache, machine, now, table

BATCH = 100_000
CHECKPOINT_EVERY = 1_000_000


def entries(start: int, end: int) -> list[bytes]:
    return [b"%064d" % i for i in range(start, end)]


def build(path: Path, n: int) -> tuple[float, int]:
    """The log of ``n`` leaves; (seconds, checkpoints kept)."""
    from ledger.log import MerkleLog
    from ledger.note import Ed25519Signer
    from ledger.sqlite import SQLiteTreeStore

    signer = Ed25519Signer("sifa.bench/audit", bytes(32))
    store = SQLiteTreeStore(path)
    log = MerkleLog(store)
    t = time.perf_counter()
    kept = 0
    for start in range(0, n, BATCH):
        end = min(n, start + BATCH)
        sign = end % CHECKPOINT_EVERY < BATCH or end == n
        log.append(entries(start, end), signer=signer if sign else None)
        kept += sign
    store.close()
    return time.perf_counter() - t, kept


def _rss_mib() -> float:
    """Peak resident memory of this process so far (MiB).

    VmHWM, not ``getrusage``'s ru_maxrss: Linux carries ru_maxrss across exec, so a child started
    from a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_sifa(path: Path, n: int) -> dict[str, float]:
    from dossier.audit import AuditReport, audit_log
    from ledger.log import MerkleLog
    from ledger.note import Ed25519Signer
    from ledger.sqlite import SQLiteTreeStore

    key = Ed25519Signer("sifa.bench/audit", bytes(32)).verifier
    log = MerkleLog(SQLiteTreeStore(path))
    start_rss = _rss_mib()
    t = time.perf_counter()
    report = AuditReport()
    audit_log(log, key, report)
    seconds = time.perf_counter() - t
    if not report.clean or log.size != n:
        raise SystemExit(f"the audit of the bench log found {report.findings[:3]}")
    return {"seconds": seconds, "peak_mib": _rss_mib(), "grown_mib": _rss_mib() - start_rss,
            "checkpoints": report.checkpoints}  # fmt: skip


def child_hashlib(n: int) -> dict[str, float]:
    start_rss = _rss_mib()
    sha = hashlib.sha256
    t = time.perf_counter()
    stack: list[bytes] = []
    i = 0
    for start in range(0, n, BATCH):
        for data in entries(start, min(n, start + BATCH)):
            h = sha(b"\x00" + data).digest()
            j = i
            while j & 1:  # a right child: merge with the subtree on the stack's top
                h = sha(b"\x01" + stack.pop() + h).digest()
                j >>= 1
            stack.append(h)
            i += 1
    root = stack[-1] if stack else sha(b"").digest()
    for left in reversed(stack[:-1]):
        root = sha(b"\x01" + left + root).digest()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "peak_mib": _rss_mib(), "grown_mib": _rss_mib() - start_rss}


def _in_child(warm: bool, *args: str) -> dict[str, float]:
    dropped = False if warm else drop_page_cache()
    out = subprocess.run([sys.executable, "-m", "bench.audit", "--child", *args],
                         check=True, capture_output=True, text=True)  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout)
    result["page_cache_dropped"] = float(dropped)
    return result


def run(n: int, workdir: Path, warm: bool = False) -> str:
    path = workdir / "audit.db"
    built, kept = build(path, n)
    size_mb = sum(p.stat().st_size for p in workdir.glob("audit.db*")) / 1e6
    ours = _in_child(warm, "sifa", str(path), str(n))
    base = _in_child(warm, "hashlib", str(n))
    rows = [
        (f"pass over {n:,} leaves (s)", f"{ours['seconds']:.1f}", f"{base['seconds']:.1f} (hashlib loop)",
         f"{ours['seconds'] / base['seconds']:.2f}"),
        ("… leaves/s", f"{n / ours['seconds']:,.0f}", f"{n / base['seconds']:,.0f}",
         f"{base['seconds'] / ours['seconds']:.2f}"),
        ("peak RSS of the process (MiB)", f"{ours['peak_mib']:.0f}", f"{base['peak_mib']:.0f}",
         f"{ours['peak_mib'] / base['peak_mib']:.2f}"),
        ("RSS growth over the pass (MiB)", f"{ours['grown_mib']:.0f}", f"{base['grown_mib']:.0f}", "—"),
    ]  # fmt: skip
    notes = [
        f"log built in {built:.0f} s ({n / built:,.0f} leaves/s, not the figure): store {size_mb:,.0f} MB,"
        f" {kept:,} checkpoint(s), all compared; page cache dropped before each pass:"
        f" {bool(ours['page_cache_dropped'])}",
        "sifa = dossier.audit.audit_log (read every entry bundle, hash, compact range, compare the roots of every"
        " checkpoint's size with tiles and checkpoint); baseline = the root of the same leaves, generated in"
        " memory, by a plain hashlib stack loop. Ratio = sifa / baseline (time, memory).",
    ]
    text = table("Audit (bench/audit.py)", rows)
    return f"{text}\n\n" + "".join(f"- {x}\n" for x in notes) + f"\nMachine: {machine()}; {now()}.\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        result = child_sifa(Path(argv[2]), int(argv[3])) if argv[1] == "sifa" else child_hashlib(int(argv[2]))
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench audit")
    p.add_argument("--leaves", type=int, default=10_000_000)
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--warm", action="store_true", help="keep the page cache (no sync, no drop)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sifa-bench-audit-", dir=args.dir))
    try:
        print(run(args.leaves, workdir, args.warm))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
