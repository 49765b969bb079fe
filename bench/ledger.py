"""Ledger figures: append throughput and cold-store proof latency, next to pymerkle.

    python -m bench ledger [--sizes 1000000,10000000] [--baseline-size 1000000] [--dir DIR]

Leaves are 64-byte entries appended in batches of 100k on the SQLite store
(synchronous=FULL, WAL). "Cold store": the store is closed, the kernel page
cache dropped where allowed, and a new store opened in a new process before
any proof is asked. pymerkle's SqliteTree does the same work at the baseline size.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import drop_page_cache, machine, median, now, pct, table

BATCH = 100_000
PROOFS = 2_000


def entries(start: int, end: int) -> list[bytes]:
    return [b"%064d" % i for i in range(start, end)]


def build_sifa(path: Path, n: int) -> float:
    from ledger.log import MerkleLog
    from ledger.sqlite import SQLiteTreeStore

    store = SQLiteTreeStore(path)
    log = MerkleLog(store)
    spent = 0.0
    for start in range(0, n, BATCH):
        batch = entries(start, min(n, start + BATCH))
        t = time.perf_counter()
        log.append(batch)
        spent += time.perf_counter() - t
    store.close()
    return n / spent


def proofs_sifa(path: Path, n: int, count: int) -> dict[str, float]:
    """In a fresh process: open the store cold and time proofs (ms)."""
    from ledger.log import MerkleLog
    from ledger.sqlite import SQLiteTreeStore

    t = time.perf_counter()
    log = MerkleLog(SQLiteTreeStore(path))
    opened = time.perf_counter() - t
    rng = random.Random(1)
    inc, con = [], []
    for _ in range(count):
        i = rng.randrange(n)
        t = time.perf_counter()
        log.inclusion_proof(i, n)
        inc.append((time.perf_counter() - t) * 1e3)
        m = rng.randint(1, n)
        t = time.perf_counter()
        log.consistency_proof(m, n)
        con.append((time.perf_counter() - t) * 1e3)
    return {"open_ms": opened * 1e3, "inc_p50": median(inc), "inc_p99": pct(inc, 99),
            "con_p50": median(con), "con_p99": pct(con, 99)}  # fmt: skip


def build_pymerkle(path: Path, n: int) -> float:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(path))
    spent = 0.0
    for start in range(0, n, BATCH):
        batch = entries(start, min(n, start + BATCH))
        t = time.perf_counter()
        tree.append_entries(batch)
        spent += time.perf_counter() - t
    tree.con.close()
    return n / spent


def proofs_pymerkle(path: Path, n: int, count: int) -> dict[str, float]:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(path))
    rng = random.Random(1)
    inc, con = [], []
    for _ in range(count):
        i = rng.randrange(n)
        t = time.perf_counter()
        tree.prove_inclusion(i + 1, n)  # pymerkle indices are 1-based
        inc.append((time.perf_counter() - t) * 1e3)
        m = rng.randint(1, n)
        t = time.perf_counter()
        tree.prove_consistency(m, n)
        con.append((time.perf_counter() - t) * 1e3)
    return {"inc_p50": median(inc), "inc_p99": pct(inc, 99), "con_p50": median(con), "con_p99": pct(con, 99)}


def _in_child(kind: str, path: Path, n: int, count: int) -> dict[str, float]:
    dropped = drop_page_cache()
    out = subprocess.run(
        [sys.executable, "-m", "bench.ledger", "--child", kind, str(path), str(n), str(count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout)
    result["page_cache_dropped"] = float(dropped)
    return result


def run(sizes: list[int], baseline_size: int, workdir: Path) -> str:
    rows: list[tuple[str, str, str, str]] = []
    notes = []
    base_path = workdir / "pymerkle.db"
    t = time.perf_counter()
    base_rate = build_pymerkle(base_path, baseline_size)
    notes.append(f"pymerkle SqliteTree built {baseline_size:,} leaves in {time.perf_counter() - t:.0f} s")
    base = _in_child("pymerkle", base_path, baseline_size, 200)
    base_path.unlink()
    for n in sizes:
        path = workdir / f"sifa-{n}.db"
        rate = build_sifa(path, n)
        size_mb = sum(p.stat().st_size for p in workdir.glob(f"sifa-{n}.db*")) / 1e6
        proofs = _in_child("sifa", path, n, PROOFS)
        rows.append((f"append, {n:,} leaves (leaves/s)", f"{rate:,.0f}", f"{base_rate:,.0f} @ {baseline_size:,}",
                     f"{rate / base_rate:.1f}×"))  # fmt: skip
        for key, label in (("inc", "inclusion"), ("con", "consistency")):
            for p in ("p50", "p99"):
                k = f"{key}_{p}"
                ours = f"{proofs[k]:.3f} ms"
                if n == baseline_size:
                    rows.append(
                        (f"{label} proof {p} @ {n:,}", ours, f"{base[k]:.3f} ms", f"{base[k] / proofs[k]:.0f}× faster")
                    )
                else:
                    rows.append((f"{label} proof {p} @ {n:,}", ours, f"{base[k]:.3f} ms @ {baseline_size:,}", "—"))
        notes.append(
            f"{n:,} leaves: store {size_mb:,.0f} MB ({size_mb * 1e6 / n:.0f} B/leaf with 64-byte entries),"
            f" cold open {proofs['open_ms']:.1f} ms, page cache dropped: {bool(proofs['page_cache_dropped'])}"
        )
        path.unlink()
        for extra in workdir.glob(f"sifa-{n}.db-*"):
            extra.unlink()
    text = table("Ledger (bench/ledger.py)", rows)
    goals = "Goals: append >= 300,000 leaves/s batched; proofs p50 <= 1 ms at 10M leaves."
    return f"{text}\n\n{goals}\n" + "".join(f"- {n}\n" for n in notes) + f"\nMachine: {machine()}; {now()}.\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        kind, path, n, count = argv[1], Path(argv[2]), int(argv[3]), int(argv[4])
        fn = proofs_sifa if kind == "sifa" else proofs_pymerkle
        print(json.dumps(fn(path, n, count)))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench ledger")
    p.add_argument("--sizes", default="1000000,10000000")
    p.add_argument("--baseline-size", type=int, default=1_000_000)
    p.add_argument("--dir", type=Path, default=None)
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sifa-bench-", dir=args.dir))
    try:
        print(run([int(s) for s in args.sizes.split(",")], args.baseline_size, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
