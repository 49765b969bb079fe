"""Child process for the memory test: stream 1 GiB into a blob store, print peak RSS growth.

Usage: python -m tests.rss_upload filesystem ROOT | s3 ENDPOINT BUCKET ACCESS SECRET
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
from collections.abc import Iterator

from storage.blobstore import BlobStore

GIB = 1 << 30
CHUNK = 1 << 20


def stream() -> Iterator[bytes]:
    block = bytearray(hashlib.sha256(b"sifa").digest() * (CHUNK // 32))
    for i in range(GIB // CHUNK):
        block[:8] = i.to_bytes(8, "big")
        yield bytes(block)


def main() -> None:
    kind = sys.argv[1]
    store: BlobStore
    if kind == "filesystem":
        from storage.filesystem import FilesystemBlobStore

        store = FilesystemBlobStore(sys.argv[2])
    else:
        from storage.s3 import S3BlobStore

        store = S3BlobStore(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], secure=False)
    h = hashlib.sha256()
    for chunk in stream():
        h.update(chunk)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = store.put(stream(), expected_sha256=h.hexdigest())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"size": info.size, "sha256": info.sha256, "growth_kib": peak - before}))


if __name__ == "__main__":
    main()
