"""Evidence registrations over HTTP (hash-only JSON, durable) at 1, 8 and 64 concurrent clients.

    python -m bench api [--seconds 10] [--clients 1,8,64]

The node runs as ``sifa serve`` in its own process on 127.0.0.1 (embedded
default: SQLite, the sequencer as its own process). Each registration is a
durable event (fsync'd, group-committed) sealed in the background. The clients
are keep-alive connections of a lean asyncio load generator (bench/loadgen.py).
Baseline: the same registrations through the application in-process, no HTTP,
one caller. Goal: >= 1,000/s with p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from bench import loadgen
from bench.common import machine, median, now, pct, table

CASES = 64


def _node(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    from api.cli import main as sifa
    from tests.servers import free_port, wait_for_port

    data = workdir / "node"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        sifa(["init", str(data), "--court", "1101-0105", "--name", "基准测试法院"])
    port = free_port()
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for_port(port)
    return proc, f"http://127.0.0.1:{port}", out.getvalue().strip()


def run_clients(base: str, token: str, dossiers: list[str], clients: int, seconds: float) -> tuple[float, list[float]]:
    def request(k: int, i: int) -> tuple[str, str, bytes]:
        d = dossiers[(k + i * clients) % len(dossiers)]
        body = {"sha256": hashlib.sha256(f"{k}/{i}".encode()).hexdigest(), "size": i, "name": f"证据{i}.pdf",
                "submitter": {"role": "原告", "name": "张三"}, "description": ""}  # fmt: skip
        return "POST", f"/v1/dossiers/{d}/evidence", json.dumps(body).encode()

    return loadgen.run(base, {"Authorization": f"Bearer {token}"}, request, clients, seconds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench api")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", default="1,8,64")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-"))
    rows = []
    try:
        proc, base, admin = _node(work)
        try:
            with httpx2.Client(base_url=base, timeout=30) as http:
                clerk = http.post("/v1/principals", json={"name": "基准", "role": "clerk"},
                                  headers={"Authorization": f"Bearer {admin}"}).json()["token"]  # fmt: skip
                auth = {"Authorization": f"Bearer {clerk}"}
                dossiers = [
                    http.post("/v1/dossiers", headers=auth,
                              json={"case_number": f"（2026）京0105民初{i}号", "case_type": "民事"}).json()["dossier"]
                    for i in range(1, CASES + 1)
                ]  # fmt: skip
            base_rate = _baseline(work, args.seconds)
            for c in (int(x) for x in args.clients.split(",")):
                rate, lat = run_clients(base, clerk, dossiers, c, args.seconds)
                rows.append((f"{c} client(s): registrations/s", f"{rate:,.0f}", f"{base_rate:,.0f}",
                             f"{rate / base_rate:.2f}"))  # fmt: skip
                rows.append((f"{c} client(s): p50 / p99 latency", f"{median(lat):.1f} / {pct(lat, 99):.1f} ms", "",
                             ""))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table("API: evidence registrations over HTTP (bench/api.py)", rows))
    print(f"\nBaseline: the same registration through DossierApp in-process, one caller, no HTTP. "
          f"{args.seconds:.0f} s per figure. Goal: >= 1,000/s with p99 <= 50 ms."
          f"\n\nMachine: {machine()}; {now()}.")  # fmt: skip
    return 0


def _baseline(work: Path, seconds: float) -> float:
    from tests.dossier_fixtures import make_stack

    root = work / "baseline"
    root.mkdir()
    stack = make_stack("sqlite", root)
    d = stack.app.open_dossier(case_number_text="（2026）京0105民初1号", case_type="民事", parties=[],
                               actor="bench", role="clerk")  # fmt: skip
    stop = time.monotonic() + seconds
    n = 0
    t = time.perf_counter()
    while time.monotonic() < stop:
        stack.app.submit_evidence(d, sha256=hashlib.sha256(b"%d" % n).hexdigest(), size=n, name="证据.pdf",
                                  submitter={"role": "原告", "name": "张三"}, description="", actor="bench",
                                  role="clerk")  # fmt: skip
        n += 1
    rate = n / (time.perf_counter() - t)
    stack.close()
    return rate


if __name__ == "__main__":
    sys.exit(main())
