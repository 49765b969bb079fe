"""Operating figures (issue 23): latency under a witness quorum, receipt size, workers, a soak with faults.

    python -m bench operate [--only quorum,size,throughput,soak] [--submits 200] [--seconds 10]
                            [--soak 1800]

- quorum: a court log and three witness nodes (each its own ``sifa serve`` on loopback, quorum 2 of
  3); one clerk submits evidence one registration at a time and polls its receipt until the receipt's
  checkpoint carries two witness cosignatures: submit → receipt, p50 and p99.
- size: a receipt of a leaf in a log of 10⁹ leaves with three cosignatures (the proof then has 30
  hashes): the bytes of the JSON receipt, of its C2SP tlog-proof form and of its compact binary form
  (docs/receipt.md; with the clerk's disclosures, and with none), built from a real receipt of the
  quorum run with its fields at the lengths such a log gives.
- throughput: registrations/s through ``sifa serve --workers 1`` and ``--workers 2`` on PostgreSQL
  (64 keep-alive connections, ``--dossiers`` of them written to, default 10; bench/loadgen.py).
- soak: ``sifa serve --workers 2`` on PostgreSQL + S3 (moto behind a cuttable proxy) under steady
  writes for ``--soak`` seconds, with faults at fixed fractions of it: a worker killed (SIGKILL),
  PostgreSQL stopped 10 s, S3 cut 10 s, the sealing sequencer killed. At the end every acknowledged
  write must be recorded once and ``sifa audit`` clean.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2

from bench import loadgen
from bench.common import machine, now, pct

LEAVES = 10**9


def _quorum(submits: int, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, a receipt with the quorum) of the submit → cosigned receipt run."""
    from tests.nodes import Serve, Writer, init, trust_entry

    admin = init(root / "log", "1101-0105", "北京市朝阳区人民法院")
    courts = [
        ("1101-0200", "北京市第三中级人民法院"),
        ("1100-0000", "北京市高级人民法院"),
        ("1101-0300", "北京市方圆公证处"),
    ]
    for court, name in courts:
        init(root / court, court, name)
    logs = {"format": "sifa-trust/1", "logs": [trust_entry(root / "log")]}
    (root / "logs.json").write_text(json.dumps(logs, ensure_ascii=False), encoding="utf-8")
    witnesses = [Serve(root / c, SIFA_WITNESS_LOGS=str(root / "logs.json")) for c, _ in courts]
    names = [trust_entry(root / c, "--witness")["key"].split("+")[0] for c, _ in courts]
    trust = {**logs, "quorum": 2, "witnesses": [{**trust_entry(root / c, "--witness"), "url": f"{w.url}/witness"}
                                                for (c, _), w in zip(courts, witnesses, strict=True)]}  # fmt: skip
    (root / "trust.json").write_text(json.dumps(trust, ensure_ascii=False), encoding="utf-8")
    log = Serve(root / "log", SIFA_WITNESSES=str(root / "trust.json"), SIFA_SEAL_INTERVAL_SECONDS="0.02",
                SIFA_WITNESS_INTERVAL_SECONDS="0.05")  # fmt: skip
    latencies: list[float] = []
    receipt: dict[str, Any] = {}
    try:
        token, (d,) = Writer.clerk(log.url, admin, clients=1)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=log.url, headers=auth, timeout=30) as http:
            for n in range(submits):
                t = time.perf_counter()
                r = http.post(f"/v1/dossiers/{d}/evidence", json={
                    "sha256": hashlib.sha256(b"%d" % n).hexdigest(), "size": n + 1, "name": f"证据{n}.pdf",
                    "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                version = r.json()["version"]
                while True:
                    got = http.get(f"/v1/dossiers/{d}/receipts/{version}")
                    if got.status_code == 200 and sum(f"— {w} " in got.json()["checkpoint"] for w in names) >= 2:
                        break
                    time.sleep(0.005)
                latencies.append((time.perf_counter() - t) * 1e3)
                if sum(f"— {w} " in got.json()["checkpoint"] for w in names) == 3 or not receipt:
                    receipt = got.json()
    finally:
        log.stop()
        for w in witnesses:
            w.stop()
    figures = {"submits": submits, "p50_ms": round(pct(latencies, 50), 1), "p99_ms": round(pct(latencies, 99), 1),
               "max_ms": round(max(latencies), 1)}  # fmt: skip
    return figures, receipt


def _size(receipt: dict[str, Any]) -> dict[str, Any]:
    """Bytes of ``receipt`` with the fields a leaf of a 10⁹-leaf log with three cosignatures has."""
    from ledger.compact_receipt import from_compact, pack, to_compact
    from ledger.receipt import Receipt
    from ledger.suite import suite_of_algorithms

    doc = json.loads(json.dumps(receipt))
    proof_len = (LEAVES - 1).bit_length()  # a leaf's inclusion proof in a tree of 10⁹ leaves: 30 hashes
    doc["inclusion_proof"] = [base64.b64encode(hashlib.sha256(b"%d" % i).digest()).decode() for i in range(proof_len)]
    doc["leaf_index"], doc["tree_size"] = LEAVES - 1, LEAVES
    lines = doc["checkpoint"].split("\n")
    lines[1] = str(LEAVES)
    sigs = [x for x in lines if x.startswith("— ")]
    while len(sigs) < 4:  # the log's signature and three cosignatures
        sigs.append(sigs[-1])
    body = lines[: lines.index("") + 1]
    doc["checkpoint"] = "\n".join([*body, *sigs[:4]]) + "\n"
    doc["terms"]["区块高度"] = LEAVES
    doc["terms"]["存证编号"] = doc["terms"]["存证编号"].rsplit("/", 1)[0] + f"/{LEAVES - 1}"
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    compact = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    as_receipt = Receipt.from_json(json.dumps(receipt))  # the real one parses, so the shape is the real one's
    leaf = base64.b64decode(doc["leaf_data"])
    tlog = len(as_receipt.to_tlog_proof().encode()) + (proof_len - len(receipt["inclusion_proof"])) * 45
    # The compact binary form (docs/receipt.md) of the same fields; the real receipt round-trips through it.
    assert from_compact(to_compact(as_receipt)) == as_receipt
    fields = {"suite": suite_of_algorithms(doc["log"]["hash"], doc["log"]["signature"]), "leaf_data": leaf,
              "leaf_index": LEAVES - 1, "inclusion_proof": [base64.b64decode(h) for h in doc["inclusion_proof"]],
              "checkpoint": doc["checkpoint"]}  # fmt: skip
    binary = len(pack(**fields, disclosures=doc.get("disclosures")))
    return {"json_bytes": len(text.encode()), "json_compact_bytes": len(compact.encode()), "tlog_proof_bytes": tlog,
            "compact_binary_bytes": binary, "compact_binary_public_leaf_only_bytes": len(pack(**fields)),
            "disclosures": len(doc.get("disclosures") or ()), "leaf_bytes": len(leaf), "proof_hashes": proof_len,
            "checkpoint_bytes": len(doc["checkpoint"].encode())}  # fmt: skip


def _serve_workers(data: Path, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    from tests.nodes import ROOT
    from tests.servers import wait_for_port

    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", str(workers)], cwd=ROOT,
                            env={**os.environ, **env, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port),
                                 "SIFA_ACCESS_LOG": "false"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    wait_for_port(port, timeout=60)
    return proc


def _throughput(seconds: float, root: Path, hot: int = 10) -> dict[str, Any]:
    from tests.nodes import Writer, init
    from tests.servers import PostgresCluster, free_port

    out: dict[str, Any] = {}
    cluster = PostgresCluster().start()
    try:
        for workers in (1, 2):
            dsn = cluster.create_database(f"tp{workers}")
            env = {"SIFA_DATABASE_URL": dsn}
            data = root / f"tp{workers}"
            os.environ["SIFA_DATABASE_URL"] = dsn
            try:
                admin = init(data, "1101-0105", "北京市朝阳区人民法院")
            finally:
                del os.environ["SIFA_DATABASE_URL"]
            port = free_port()
            proc = _serve_workers(data, port, workers, env)
            try:
                url = f"http://127.0.0.1:{port}"
                time.sleep(2.0)  # every worker up
                token, dossiers = Writer.clerk(url, admin, clients=hot)

                def request(k: int, i: int, dossiers: list[str] = dossiers) -> tuple[str, str, bytes]:
                    body = json.dumps({"sha256": hashlib.sha256(f"{k}/{i}".encode()).hexdigest(), "size": 1,
                                       "name": "证据.pdf", "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                    return "POST", f"/v1/dossiers/{dossiers[(k + i) % len(dossiers)]}/evidence", body.encode()

                rate, lat = loadgen.run(url, {"Authorization": f"Bearer {token}"}, request, 64, seconds,
                                        ok=frozenset({200, 409}))  # fmt: skip
                out[f"workers_{workers}"] = {"per_second": round(rate, 1), "p50_ms": round(pct(lat, 50), 1),
                                             "p99_ms": round(pct(lat, 99), 1), "requests": len(lat)}  # fmt: skip
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    finally:
        cluster.stop()
    return out


def _soak(seconds: float, root: Path) -> dict[str, Any]:
    """Steady writes through two workers while faults come; every acknowledged write recorded once."""
    from api.cli import main as sifa
    from api.composition import open_node
    from api.settings import Settings
    from tests.nodes import Writer, children, init, sealing_sequencer
    from tests.servers import MotoServer, PostgresCluster, TcpProxy, free_port

    cluster, moto = PostgresCluster().start(), MotoServer().start()
    proxy = TcpProxy(int(moto.endpoint.rsplit(":", 1)[1])).start()
    dsn = cluster.create_database("soak")
    env = {"SIFA_DATABASE_URL": dsn, "SIFA_S3_ENDPOINT": proxy.endpoint, "SIFA_S3_SECURE": "false",
           "SIFA_S3_BUCKET": "soak", "SIFA_S3_ACCESS_KEY": moto.access_key,
           "SIFA_S3_SECRET_KEY": moto.secret_key}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    faults: list[str] = []
    acked: list[tuple[str, str]] = []
    answers: Counter[int] = Counter()
    data = root / "soak"
    try:
        admin = init(data, "1101-0105", "北京市朝阳区人民法院")
        port = free_port()
        proc = _serve_workers(data, port, 2, env)
        url = f"http://127.0.0.1:{port}"
        try:
            time.sleep(2.0)
            token, dossiers = Writer.clerk(url, admin, clients=8)
            stop = threading.Event()
            lock = threading.Lock()

            def client(n: int) -> None:
                with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        d, sha = dossiers[n % 8], hashlib.sha256(f"{n}/{i}".encode()).hexdigest()
                        try:
                            if i % 10 == 0:  # a file now and then: through S3
                                head = {"X-File-Name": "bilu.txt", "Content-Type": "text/plain"}
                                r = http.post(
                                    f"/v1/dossiers/{d}/documents", content=f"笔录 {n}/{i}".encode(), headers=head
                                )
                                sha = r.json().get("sha256", sha) if r.status_code == 201 else sha
                            else:
                                r = http.post(f"/v1/dossiers/{d}/evidence", json={
                                    "sha256": sha, "size": i, "name": "证据.pdf",
                                    "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                            status = r.status_code
                        except httpx2.TransportError:
                            status = 0
                        with lock:
                            answers[status] += 1
                            if status // 100 == 2:
                                acked.append((d, sha))
                        time.sleep(0.02)

            threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(16)]
            for t in threads:
                t.start()
            start = time.monotonic()

            def at(fraction: float) -> None:
                time.sleep(max(0.0, start + fraction * seconds - time.monotonic()))

            at(0.15)
            worker = children(proc.pid)[0]
            os.kill(worker, signal.SIGKILL)
            faults.append(f"{time.monotonic() - start:.0f} s: API worker {worker} killed (SIGKILL)")
            at(0.35)
            cluster.pg_stop()
            faults.append(f"{time.monotonic() - start:.0f} s: PostgreSQL stopped for 10 s")
            time.sleep(10)
            cluster.pg_start_again()
            at(0.55)
            proxy.cut()
            faults.append(f"{time.monotonic() - start:.0f} s: S3 cut for 10 s")
            time.sleep(10)
            proxy.start()
            at(0.75)
            sequencers = [c for w in children(proc.pid) for c in children(w)]
            sealing = sealing_sequencer(dsn, sequencers)
            if sealing is not None:
                os.kill(sealing, signal.SIGKILL)
                faults.append(f"{time.monotonic() - start:.0f} s: the sealing sequencer {sealing} killed (SIGKILL)")
            at(1.0)
            stop.set()
            for t in threads:
                t.join(timeout=60)
            health: dict[str, Any] = {}
            with httpx2.Client(base_url=url, timeout=10) as http:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with contextlib.suppress(httpx2.TransportError, ValueError, KeyError):
                        health = http.get("/healthz").json()
                        if health["events_waiting"] == 0:
                            break
                    time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        with open_node(Settings(data_dir=data)) as node:
            app = node.dossiers
            recorded: Counter[tuple[str, str]] = Counter()
            for d in dossiers:
                for e in app.events.get(d):
                    name = type(e).__name__
                    if name in ("EvidenceSubmitted", "DocumentUploaded"):
                        recorded[(d, e.sha256)] += 1
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            audit_code = sifa(["audit", "--data-dir", str(data), "--json"])
        report = json.loads(out.getvalue())
        lost = [k for k in acked if recorded[k] < 1]
        evidence_doubled = [k for k, n in recorded.items() if n > 1 and k in set(acked)]
        return {"seconds": seconds, "faults": faults, "last_health": health, "answers": dict(answers),
                "acknowledged": len(acked), "lost": len(lost), "recorded_more_than_once": len(evidence_doubled),
                "audit_exit": audit_code,
                "audit_findings": len(report["findings"]), "events": report["events"]}  # fmt: skip
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proxy.cut()
        moto.stop()
        cluster.stop()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench operate")
    p.add_argument("--only", default="quorum,size,throughput,soak")
    p.add_argument("--submits", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0, help="each throughput run")
    p.add_argument("--soak", type=float, default=1800.0, help="soak length in seconds")
    p.add_argument("--dossiers", type=int, default=10, help="dossiers the throughput run writes to")
    args = p.parse_args(argv)
    parts = set(args.only.split(","))
    results: dict[str, Any] = {"machine": machine(), "when": now()}
    with tempfile.TemporaryDirectory(prefix="sifa-operate-") as tmp:
        root = Path(tmp)
        receipt: dict[str, Any] = {}
        if parts & {"quorum", "size"}:
            results["quorum"], receipt = _quorum(args.submits if "quorum" in parts else 5, root / "quorum")
            print(json.dumps({"quorum": results["quorum"]}, ensure_ascii=False), flush=True)
        if "size" in parts:
            results["receipt_size"] = _size(receipt)
            print(json.dumps({"receipt_size": results["receipt_size"]}, ensure_ascii=False), flush=True)
        if "throughput" in parts:
            results["throughput"] = _throughput(args.seconds, root, args.dossiers)
            print(json.dumps({"throughput": results["throughput"]}, ensure_ascii=False), flush=True)
        if "soak" in parts:
            results["soak"] = _soak(args.soak, root)
            print(json.dumps({"soak": results["soak"]}, ensure_ascii=False), flush=True)
    print(json.dumps(results, ensure_ascii=False, indent=1))
    soak = results.get("soak")
    return 1 if soak and (soak["lost"] or soak["audit_exit"]) else 0
