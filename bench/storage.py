"""Blob ingest: a 1 GiB file through each adapter vs ``sha256sum`` + ``cp`` of the same file.

    python -m bench storage [--size-mib 1024] [--repeat 3] [--dir DIR]

The filesystem adapter reads the file once, hashes while writing a temp file,
fsyncs it and links it under its hash. The baseline reads it twice (sha256sum,
then cp) and does not fsync. Each figure is the best of ``--repeat`` runs, the
kernel page cache dropped before each where allowed. S3 runs against moto's
server on 127.0.0.1, started by the benchmark (an in-memory Python server: its
figure says more about moto than about MinIO).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import drop_page_cache, machine, now, table


def make_file(path: Path, size: int) -> None:
    block = bytearray(os.urandom(1 << 20))
    with path.open("wb") as f:
        for i in range(size >> 20):
            block[:8] = i.to_bytes(8, "big")
            f.write(block)


def best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        drop_page_cache()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(size_mib: int, repeat: int, workdir: Path) -> str:
    from storage.filesystem import FilesystemBlobStore
    from storage.s3 import S3BlobStore
    from tests.servers import MotoServer

    src = workdir / "dossier.bin"
    make_file(src, size_mib << 20)
    mib = float(size_mib)

    def baseline() -> None:
        subprocess.run(["sha256sum", str(src)], check=True, capture_output=True)
        shutil.copyfile(src, workdir / "copy.bin")  # cp's work, in-process
        (workdir / "copy.bin").unlink()

    def fs_put() -> None:
        root = workdir / f"fs-{uuid.uuid4().hex}"
        with src.open("rb") as f:
            FilesystemBlobStore(root).put(f)
        shutil.rmtree(root)

    def baseline_openssl() -> None:
        # coreutils' sha256sum here lacks the CPU's SHA extensions; OpenSSL (like Python's hashlib) uses them.
        subprocess.run(["openssl", "dgst", "-sha256", str(src)], check=True, capture_output=True)
        shutil.copyfile(src, workdir / "copy.bin")
        (workdir / "copy.bin").unlink()

    t_base = best(baseline, repeat)
    t_ossl = best(baseline_openssl, repeat) if shutil.which("openssl") else float("nan")
    t_fs = best(fs_put, repeat)
    rows = [
        (f"filesystem put, {size_mib} MiB (MiB/s)", f"{mib / t_fs:,.0f}", f"{mib / t_base:,.0f} (sha256sum + cp)",
         f"{t_base / t_fs:.2f}"),
        (f"filesystem put, {size_mib} MiB (MiB/s)", f"{mib / t_fs:,.0f}", f"{mib / t_ossl:,.0f} (openssl sha256 + cp)",
         f"{t_ossl / t_fs:.2f}"),
    ]  # fmt: skip
    server = MotoServer().start()
    try:
        store = S3BlobStore(server.endpoint, "bench-blobs", server.access_key, server.secret_key, secure=False)
        digest = hashlib.sha256(src.read_bytes()).hexdigest()

        def s3_put() -> None:
            with src.open("rb") as f:
                store.put(f, expected_sha256=digest)

        t0 = time.perf_counter()
        s3_put()
        t_s3 = time.perf_counter() - t0
        rows.append((f"S3 (moto) put, {size_mib} MiB (MiB/s)", f"{mib / t_s3:,.0f}",
                     f"{mib / t_ossl:,.0f} (openssl sha256 + cp)", f"{t_ossl / t_s3:.2f}"))  # fmt: skip
        store.close()
    finally:
        server.stop()
    text = table("Blob storage (bench/storage.py)", rows)
    return (
        f"{text}\n\nBaseline: `sha256sum` + copy of the same file in the same run (best of {repeat}). "
        "Ratio = baseline time / sifa time; goal >= 0.8 for the filesystem adapter.\n"
        f"\nMachine: {machine()}; {now()}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench storage")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", type=Path, default=None)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="sifa-bench-", dir=args.dir))
    try:
        print(run(args.size_mib, args.repeat, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
