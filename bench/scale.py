"""Scale run: a 10M-leaf log, and a node holding 100k dossiers / 2M events, against the same at 10k.

    python -m bench scale [--leaves 10000000] [--events 2000000] [--per-dossier 20] [--seconds 5]

Log: leaves appended in batches (bench/ledger.py), then proofs timed in a fresh process (store
opened cold, page cache dropped when allowed); figures at 10k leaves and at the full size.
Node: a real data dir (``sifa init``); dossiers opened with ``per-dossier - 1`` evidence each, 50
dossiers per transaction, then sealed; measured at 10k events and again at the full size: store
bytes per event (events + tree SQLite files), proofs in a fresh process, and over HTTP
(``sifa serve``, one client) the latency of a registration, an inclusion proof and a receipt.
The baseline column is the same figure at 10k.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from bench import loadgen
from bench.common import machine, median, now, pct, table
from bench.ledger import _in_child, build_sifa

SMALL = 10_000
ACT = {"actor": "clerk:scale", "role": "clerk"}


def _fill(data: Path, start: int, end: int, per: int) -> None:
    """Events ``start``..``end`` as dossiers of ``per`` events, then sealed."""
    from api.composition import open_node
    from api.node import load_leaf_secret
    from api.settings import Settings
    from dossier.domain import Dossier, party
    from dossier.sealer import Sealer

    with open_node(Settings(data_dir=data)) as node:
        app = node.dossiers
        batch: list[Dossier] = []
        submitter = party({"role": "原告", "name": "张三"})
        for first in range(start, end, per):
            n = first // per + 1
            d = Dossier(court=app.court, case_number=f"（2026）京0105民初{n}号", case_type="民事", parties=[], **ACT)
            for k in range(1, min(per, end - first)):
                d.submit_evidence(evidence_id=f"e{k}", sha256=hashlib.sha256(b"%d/%d" % (n, k)).hexdigest(),
                                  size=k, name=f"证据{k}.pdf", submitter=submitter, description="", **ACT)  # fmt: skip
            batch.append(d)
            if len(batch) == 50:
                app._save(*batch)
                batch = []
        if batch:
            app._save(*batch)
        sealer = Sealer(app, node.log, node.signer, secret=load_leaf_secret(data), batch=5000)
        sealer.seal()


def _bytes_per_event(data: Path, events: int) -> float:
    files = [f for f in data.iterdir() if f.name.startswith(("events.sqlite", "tree.sqlite"))]
    return sum(f.stat().st_size for f in files) / events


def _api(data: Path, admin: str, seconds: float, events: int, per: int) -> dict[str, tuple[float, float]]:
    from tests.servers import free_port, wait_for_port

    port = free_port()
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port), "SIFA_ACCESS_LOG": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, timeout=120)
        base = f"http://127.0.0.1:{port}"
        with httpx2.Client(base_url=base, timeout=60) as http:
            token = http.post("/v1/principals", json={"name": "规模", "role": "clerk"},
                              headers={"Authorization": f"Bearer {admin}"}).json()["token"]  # fmt: skip
            size = int(http.get("/v1/log/checkpoint").text.splitlines()[1])
        from dossier.domain import dossier_id

        rng = random.Random(7)
        cases = [str(dossier_id("1101-0105", f"（2026）京0105民初{rng.randrange(1, events // per)}号"))
                 for _ in range(200)]  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        out: dict[str, tuple[float, float]] = {}

        def registration(k: int, i: int) -> tuple[str, str, bytes]:
            body = {"sha256": hashlib.sha256(b"%d" % i).hexdigest(), "size": i, "name": "证据.pdf",
                    "submitter": {"role": "原告", "name": "张三"}}  # fmt: skip
            return "POST", f"/v1/dossiers/{cases[i % len(cases)]}/evidence", json.dumps(body).encode()

        def proof(k: int, i: int) -> tuple[str, str, bytes]:
            return "GET", f"/v1/log/proof/inclusion?index={rng.randrange(size)}&size={size}", b""

        def receipt(k: int, i: int) -> tuple[str, str, bytes]:
            return "GET", f"/v1/dossiers/{cases[i % len(cases)]}/receipts/{1 + i % (per - 1)}", b""

        def listing(k: int, i: int) -> tuple[str, str, bytes]:
            return "GET", "/v1/dossiers?limit=50", b""

        def by_number(k: int, i: int) -> tuple[str, str, bytes]:
            n = 1 + i * 7919 % (events // per)
            return "GET", f"/v1/dossiers?case_number={quote(f'(2026)京0105民初{n:05d}号')}", b""

        with httpx2.Client(base_url=base, timeout=600) as http:  # the index catches up with every dossier first
            http.get("/v1/dossiers", headers=auth)
        for name, request in (("registration", registration), ("inclusion proof", proof), ("receipt", receipt),
                              ("dossier list, first page of 50", listing),
                              ("dossier search by case number", by_number)):  # fmt: skip
            _, lat = loadgen.run(base, auth, request, 1, seconds)  # type: ignore[arg-type]
            out[name] = (median(lat), pct(lat, 99))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _node_figures(data: Path, admin: str, events: int, per: int, seconds: float) -> dict[str, Any]:
    from api.node import TREE_DB

    proofs = _in_child("sifa", data / TREE_DB, events, 2000)
    return {"bytes": _bytes_per_event(data, events), "proofs": proofs, "api": _api(data, admin, seconds, events, per)}


def index_figures(dossiers: int, samples: int = 2000) -> list[tuple[str, str, str, str]]:
    """p50 / p99 of the dossier index's searches (dossier/index.py) at ``dossiers`` dossiers, against
    the same at 10k: the index filled directly (no events written), each query on a fresh connection,
    as ``GET /v1/dossiers`` runs it. The acceptance figure (issue 19): p99 <= 50 ms at 100,000."""
    from dossier.index import DossierIndex, Query

    def fill(path: Path, n: int) -> DossierIndex:
        index = DossierIndex(path, b"bench key")
        rows = [(f"{k:032x}", "1101-0105", f"（2026）京0105民初{k + 1}号", "民事", [f"当事人{k}", f"当事人{k % 97}x"],
                 f"2026-{1 + k * 12 // n:02d}-01T00:00:{k % 60:02d}.{k:06d}Z") for k in range(n)]  # fmt: skip
        for first in range(0, n, 10_000):
            index.add(rows[first : first + 10_000])
        return index

    def timed(index: DossierIndex, n: int) -> dict[str, tuple[float, float]]:
        rng = random.Random(3)
        page = index.search(Query(holder="1101-0105", limit=50))
        deep = page.next_cursor
        for _ in range(40):  # a cursor 2,000 dossiers in
            deep = index.search(Query(holder="1101-0105", limit=50, cursor=deep)).next_cursor
        lawyer = [f"{rng.randrange(n):032x}" for _ in range(30)]
        queries: dict[str, Any] = {
            "first page of 50": lambda: Query(holder="1101-0105", limit=50),
            "page 41 by cursor": lambda: Query(holder="1101-0105", limit=50, cursor=deep),
            "by case number": lambda: Query(
                holder="1101-0105", case_number=f"(2026)京0105民初{rng.randrange(n) + 1}号"
            ),
            "by party name": lambda: Query(holder="1101-0105", party=f"当事人{rng.randrange(n)}"),
            "by status (archived: none)": lambda: Query(holder="1101-0105", status="archived"),
            "by opening month": lambda: Query(
                holder="1101-0105", opened_from="2026-06-01T00:00:00.000000Z", opened_to="2026-07-01T00:00:00.000000Z"
            ),
            "a lawyer's 30 dossiers": lambda: Query(holder="1101-0105", within=lawyer),
        }
        out = {}
        for name, make in queries.items():
            lat = []
            for _ in range(samples // len(queries)):
                q = make()
                t = time.perf_counter()
                index.search(q)
                lat.append((time.perf_counter() - t) * 1000)
            out[name] = (median(lat), pct(lat, 99))
        return out

    with tempfile.TemporaryDirectory(prefix="sifa-bench-index-") as work:
        small, big = timed(fill(Path(work) / "s.sqlite", SMALL), SMALL), timed(fill(Path(work) / "b.sqlite", dossiers),
                                                                               dossiers)  # fmt: skip
    return [(f"index: {name} at {dossiers:,} dossiers p50 / p99 (ms)", f"{b50:.2f} / {b99:.2f}",
             f"{small[name][0]:.2f} / {small[name][1]:.2f}", f"{b50 / small[name][0]:.2f}")
            for name, (b50, b99) in big.items()]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench scale")
    p.add_argument("--leaves", type=int, default=10_000_000)
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--per-dossier", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5.0, help="per API figure")
    p.add_argument("--index-only", type=int, metavar="DOSSIERS", help="only the dossier index's figures at DOSSIERS")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.index_only:
        print(table("Dossier index (bench/scale.py --index-only)", index_figures(args.index_only)))
        print(f"\nBaseline = the same figure at {SMALL:,} dossiers.\n\nMachine: {machine()}; {now()}.")
        return 0
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        # The log alone.
        small, big = work / "small.sqlite", work / "big.sqlite"
        build_sifa(small, SMALL)
        t = time.perf_counter()
        rate = build_sifa(big, args.leaves)
        built = time.perf_counter() - t
        a, b = _in_child("sifa", small, SMALL, 2000), _in_child("sifa", big, args.leaves, 2000)
        per_big, per_small = big.stat().st_size / args.leaves, small.stat().st_size / SMALL
        rows += [
            (f"log: {args.leaves:,} leaves appended (leaves/s; built in {built:.0f} s)", f"{rate:,.0f}", "", ""),
            ("log: tree store bytes per leaf", f"{per_big:.1f}", f"{per_small:.1f}", f"{per_big / per_small:.2f}"),
            ("log: inclusion proof p50 / p99 (ms)", f"{b['inc_p50']:.2f} / {b['inc_p99']:.2f}",
             f"{a['inc_p50']:.2f} / {a['inc_p99']:.2f}", f"{b['inc_p50'] / a['inc_p50']:.2f}"),
            ("log: consistency proof p50 / p99 (ms)", f"{b['con_p50']:.2f} / {b['con_p99']:.2f}",
             f"{a['con_p50']:.2f} / {a['con_p99']:.2f}", f"{b['con_p50'] / a['con_p50']:.2f}"),
        ]  # fmt: skip
        big.unlink()
        rows += index_figures(args.events // args.per_dossier)

        # A node with dossiers.
        from api.cli import main as sifa

        data = work / "node"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sifa(["init", str(data), "--court", "1101-0105", "--name", "规模测试法院"])
        admin = out.getvalue().strip()
        _fill(data, 0, SMALL, args.per_dossier)
        at_small = _node_figures(data, admin, SMALL, args.per_dossier, args.seconds)
        t = time.perf_counter()
        _fill(data, SMALL, args.events, args.per_dossier)
        filled = time.perf_counter() - t
        at_big = _node_figures(data, admin, args.events, args.per_dossier, args.seconds)
        dossiers = args.events // args.per_dossier
        rows.append((f"node: {dossiers:,} dossiers / {args.events:,} events written + sealed (s)",
                     f"{filled:.0f}", "", ""))  # fmt: skip
        rows.append(("node: event + tree store bytes per event", f"{at_big['bytes']:.0f}", f"{at_small['bytes']:.0f}",
                     f"{at_big['bytes'] / at_small['bytes']:.2f}"))  # fmt: skip
        for key, label in (("inc", "inclusion"), ("con", "consistency")):
            rows.append((f"node: {label} proof p50 / p99 (ms)",
                         f"{at_big['proofs'][key + '_p50']:.2f} / {at_big['proofs'][key + '_p99']:.2f}",
                         f"{at_small['proofs'][key + '_p50']:.2f} / {at_small['proofs'][key + '_p99']:.2f}",
                         f"{at_big['proofs'][key + '_p50'] / at_small['proofs'][key + '_p50']:.2f}"))  # fmt: skip
        for name, (p50, p99) in at_big["api"].items():
            s50, s99 = at_small["api"][name]
            rows.append((f"node over HTTP: {name} p50 / p99 (ms)", f"{p50:.1f} / {p99:.1f}", f"{s50:.1f} / {s99:.1f}",
                         f"{p50 / s50:.2f}"))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table("Scale (bench/scale.py)", rows))
    print(f"\nBaseline = the same figure at {SMALL:,} leaves / events; one client for the HTTP figures "
          f"({args.seconds:.0f} s each).\n\nMachine: {machine()}; {now()}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
