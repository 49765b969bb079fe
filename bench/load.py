"""Mixed load for a long time: are memory and file descriptors flat?

    python -m bench load [--seconds 600] [--clients 8]

One node (``sifa serve`` + its sequencer, embedded default) on 127.0.0.1; the clients of
bench/loadgen.py send, in turn, evidence registrations (4 in 8), file uploads (4-64 KiB), inclusion
proofs against the latest checkpoint, verifications by hash and checkpoint reads, spread over
2,000 dossiers (a court's daily work touches many dossiers, each a little). Any answer other
than 2xx stops the run. Every 10 s the resident memory and open file descriptors of the API and the
sequencer are sampled; the figure compares the last sample with the one taken after the first
minute (the warm-up: caches filling), so a ratio near 1.00 means flat.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx2

from bench import loadgen
from bench.api import _node
from bench.common import machine, median, now, pct, table

DOSSIERS = 2000  # more than the 1,000 dossiers a node keeps in memory: its caches fill and cycle


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench load")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--clients", type=int, default=8)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-"))
    proc, base, admin = _node(work)
    try:
        sequencer = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        with httpx2.Client(base_url=base, timeout=30) as http:
            clerk = http.post("/v1/principals", json={"name": "负载", "role": "clerk"},
                              headers={"Authorization": f"Bearer {admin}"}).json()["token"]  # fmt: skip
            auth = {"Authorization": f"Bearer {clerk}"}
            dossiers = [http.post("/v1/dossiers", headers=auth, json={"case_number": f"（2026）京0105民初{i}号",
                                                                      "case_type": "民事"}).json()["dossier"]
                        for i in range(1, DOSSIERS + 1)]  # fmt: skip
        signed = [1]
        uploaded: list[str] = [hashlib.sha256(b"none yet").hexdigest()]
        samples: list[tuple[float, int, int, int, int]] = []
        done = threading.Event()
        kinds = {"registration": 0, "upload": 0, "proof": 0, "verify": 0, "checkpoint": 0}

        def watch() -> None:
            t0 = time.monotonic()
            with httpx2.Client(base_url=base, timeout=30) as http:
                while not done.wait(1.0):
                    text = http.get("/v1/log/checkpoint").text
                    signed[0] = max(1, int(text.splitlines()[1]))
                    elapsed = time.monotonic() - t0
                    if not samples or elapsed - samples[-1][0] >= 10:
                        samples.append((elapsed, _rss_kib(proc.pid), _fds(proc.pid), _rss_kib(sequencer),
                                        _fds(sequencer)))  # fmt: skip

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def request(k: int, i: int) -> tuple[str, str, bytes] | tuple[str, str, bytes, dict[str, str]]:
            rng = random.Random(k * 10**9 + i)
            d = dossiers[(k * 997 + i) % len(dossiers)]
            turn = i % 8
            if turn < 4:
                kinds["registration"] += 1
                body = {"sha256": hashlib.sha256(f"{k}/{i}".encode()).hexdigest(), "size": i, "name": f"证据{i}.pdf",
                        "submitter": {"role": "原告", "name": "张三"}}  # fmt: skip
                return "POST", f"/v1/dossiers/{d}/evidence", json.dumps(body).encode()
            if turn == 4:
                kinds["upload"] += 1
                data = rng.randbytes(rng.randrange(4 << 10, 64 << 10))
                uploaded.append(hashlib.sha256(data).hexdigest())
                return "POST", f"/v1/dossiers/{d}/documents", data, {
                    "Content-Type": "application/octet-stream", "X-File-Name": quote(f"材料{k}-{i}.bin")}  # fmt: skip
            if turn == 5:
                kinds["proof"] += 1
                size = signed[0]
                return "GET", f"/v1/log/proof/inclusion?index={rng.randrange(size)}&size={size}", b""
            if turn == 6:
                kinds["verify"] += 1
                return "POST", "/v1/verify", json.dumps({"sha256": rng.choice(uploaded[-1000:])}).encode()
            kinds["checkpoint"] += 1
            return "GET", "/v1/log/checkpoint", b""

        rate, lat = loadgen.run(base, auth, request, args.clients, args.seconds)
        done.set()
        watcher.join()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)

    warm = next((s for s in samples if s[0] >= 60), samples[len(samples) // 2])
    last = samples[-1]
    rows = [
        (f"requests/s over {args.seconds:.0f} s, {args.clients} clients (no error)", f"{rate:,.0f}", "", ""),
        ("p50 / p99 latency (ms)", f"{median(lat):.1f} / {pct(lat, 99):.1f}", "", ""),
        ("mix: " + ", ".join(f"{k} {v:,}" for k, v in kinds.items()), "", "", ""),
        ("API resident memory (MiB), end vs after 1 min", f"{last[1] / 1024:.1f}", f"{warm[1] / 1024:.1f}",
         f"{last[1] / warm[1]:.2f}"),
        ("API open file descriptors, end vs after 1 min", f"{last[2]}", f"{warm[2]}", f"{last[2] / warm[2]:.2f}"),
        ("sequencer resident memory (MiB)", f"{last[3] / 1024:.1f}", f"{warm[3] / 1024:.1f}",
         f"{last[3] / warm[3]:.2f}"),
        ("sequencer open file descriptors", f"{last[4]}", f"{warm[4]}", f"{last[4] / warm[4]:.2f}"),
    ]  # fmt: skip
    print(table("Mixed load (bench/load.py)", rows))
    trace = ", ".join(f"{s[0]:.0f}s {s[1] / 1024:.0f}/{s[2]}" for s in samples[:: max(1, len(samples) // 8)])
    print(f"\nBaseline = the same process after the first minute. API memory (MiB) / fds over time: {trace}."
          f"\n\nMachine: {machine()}; {now()}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
