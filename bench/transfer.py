"""Appeal retrieval between two local nodes vs a plain copy of the same bytes.

    python -m bench transfer [--files 1000] [--mib 1024]

Two ``sifa serve`` nodes on 127.0.0.1 (embedded default). The basic court holds a dossier of
``--files`` files, ``--mib`` MiB in all, and transfers it; the intermediate court's
``POST /v1/retrievals`` then fetches the package over a signed request, verifies every event and
every byte, stores each file durably (fsync) and records the received dossier. The baseline, in
the same run and from a cold page cache too, copies the same blob files to another directory on
the same disk — once with an fsync per file (the same durability), once as ``cp`` does.
Goal (issue 8): retrieval throughput >= 0.5 of the plain copy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx2

from bench.common import drop_page_cache, machine, now, table
from tests.nodes import PeerNode, start_peer_nodes

LOW, MID = "1101-0105", "1101-0200"
COURTS = [
    {"code": LOW, "name": "基准测试基层法院", "level": "基层", "parent": MID},
    {"code": MID, "name": "基准测试中级法院", "level": "中级", "parent": None},
]


def _copy(files: list[Path], to: Path, *, fsync: bool) -> float:
    to.mkdir()
    started = time.perf_counter()
    for i, f in enumerate(files):
        target = to / f"{i:05d}"
        shutil.copyfile(f, target)
        if fsync:
            fd = os.open(target, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench transfer")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--mib", type=int, default=1024)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-transfer-"))
    nodes: dict[str, PeerNode] = {}
    try:
        nodes = start_peer_nodes(work, COURTS)
        clerks = {}
        for code, n in nodes.items():
            with httpx2.Client(base_url=n.serve.url, timeout=60) as http:
                r = http.post("/v1/principals", json={"name": "基准", "role": "clerk"},
                              headers={"Authorization": f"Bearer {n.admin}"})  # fmt: skip
                clerks[code] = {"Authorization": f"Bearer {r.json()['token']}"}
        low = httpx2.Client(base_url=nodes[LOW].serve.url, timeout=600)
        mid = httpx2.Client(base_url=nodes[MID].serve.url, timeout=3600)
        d = low.post("/v1/dossiers", headers=clerks[LOW], json={"case_number": "（2026）京0105民初9001号",
                     "case_type": "民事"}).json()["dossier"]  # fmt: skip
        size = (args.mib << 20) // args.files

        def upload(i: int) -> None:
            name = quote(f"第{i:04d}号证据.bin")
            r = low.post(f"/v1/dossiers/{d}/documents", content=os.urandom(size), headers={
                **clerks[LOW], "X-File-Name": name, "Content-Type": "application/octet-stream"})  # fmt: skip
            r.raise_for_status()

        print(f"bench transfer: uploading {args.files} files of {size} bytes …", file=sys.stderr)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, range(args.files)))
        low.post(f"/v1/dossiers/{d}/transfers", headers=clerks[LOW], json={
            "to_court": MID, "kind": "上诉", "reason": "基准测试"}).raise_for_status()  # fmt: skip
        total = size * args.files
        blob_files = sorted(f for f in (work / LOW / "blobs" / "blobs").rglob("*") if f.is_file())
        cold = drop_page_cache()
        started = time.perf_counter()
        r = mid.post("/v1/retrievals", headers=clerks[MID], json={"from_court": LOW, "dossier": d})
        took = time.perf_counter() - started
        r.raise_for_status()
        assert r.json()["files"] == args.files, r.text
        drop_page_cache()
        durable = _copy(blob_files, work / "copy-fsync", fsync=True)
        drop_page_cache()
        plain = _copy(blob_files, work / "copy", fsync=False)
        mb = total / 1e6
        rows = [
            ("retrieval + verify + import, MB/s", f"{mb / took:,.0f}", f"{mb / durable:,.0f} (copy+fsync)",
             f"{durable / took:.2f}"),
            ("… files/s", f"{args.files / took:,.0f}", f"{args.files / durable:,.0f}", f"{durable / took:.2f}"),
            ("… vs cp (no fsync), MB/s", f"{mb / took:,.0f}", f"{mb / plain:,.0f} (copy)", f"{plain / took:.2f}"),
        ]  # fmt: skip
        print(table(f"transfer: {args.files} files, {args.mib} MiB, two local nodes ({now()})", rows))
        print(f"\n{machine()}; page cache dropped before each: {cold}")
        low.close()
        mid.close()
    finally:
        for n in nodes.values():
            n.serve.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
