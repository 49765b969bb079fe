"""Static reads (api/publish.py): the log published to an S3 bucket (moto) in the tlog-tiles layout,
read back with the tlog-tiles client (ledger/tlog_client.py) and checked against the node."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from minio import Minio

from api.app import create_app
from api.cli import main as sifa
from api.node import load_signer, open_tree_store
from api.settings import Settings
from ledger.log import MerkleLog
from ledger.tlog_client import TileMismatchError, index_path, paths_for, read_log
from tests.nodes import Serve, Writer, init
from tests.servers import MotoServer


def bucket_fetch(client: Minio, bucket: str, prefix: str = "") -> Callable[[str], bytes]:
    def fetch(path: str) -> bytes:
        response = client.get_object(bucket, prefix + path)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    return fetch


def append_and_sign(data: Path, n: int, start: int) -> None:
    store = open_tree_store(data, "")
    try:
        log = MerkleLog(store)
        log.append([f"卷宗事件 {i}".encode() for i in range(start, start + n)])
        log.sign_checkpoint(load_signer(data))
    finally:
        store.close()


def node_state(data: Path) -> tuple[str, list[bytes]]:
    store = open_tree_store(data, "")
    try:
        kept = store.checkpoint()
        assert kept is not None
        return kept[1], MerkleLog(store).entries(0, kept[0])
    finally:
        store.close()


def test_index_paths_are_tlog_tiles() -> None:
    assert [index_path(n) for n in (0, 5, 999, 1000, 1234067)] == ["000", "005", "999", "x001/000", "x001/x234/067"]
    assert [p for p, _, _ in paths_for(0, 300)] == ["tile/entries/000", "tile/entries/001.p/44", "tile/0/000",
                                                   "tile/0/001.p/44", "tile/1/000.p/1"]  # fmt: skip
    assert [p for p, _, _ in paths_for(300, 301)] == ["tile/entries/001.p/45", "tile/0/001.p/45"]


@pytest.mark.slow
def test_the_log_read_from_the_bucket_is_the_nodes(
    tmp_path: Path, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "node"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    for k, v in {"SIFA_S3_ENDPOINT": s3_server.endpoint, "SIFA_S3_SECURE": "false", "SIFA_PUBLISH_BUCKET": "tlog",
                 "SIFA_PUBLISH_PREFIX": "1101-0105", "SIFA_S3_ACCESS_KEY": s3_server.access_key,
                 "SIFA_S3_SECRET_KEY": s3_server.secret_key}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    client = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
    fetch = bucket_fetch(client, "tlog", "1101-0105/")
    keys = [load_signer(data).verifier]

    append_and_sign(data, 600, 0)
    assert sifa(["publish", "--data-dir", str(data)]) == 0
    note, entries = node_state(data)
    read = read_log(fetch, keys)
    assert (read.note, read.entries, read.checkpoint.size) == (note, entries, 600)
    full = client.stat_object("tlog", "1101-0105/tile/0/000")
    assert full.metadata.get("Cache-Control") == "public, max-age=31536000, immutable"

    # Past 65,536 leaves: a full level-1 tile and a level-2 one; only what is new is written.
    append_and_sign(data, 65_536 - 600 + 300, 600)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert sifa(["publish", "--data-dir", str(data)]) == 0
    assert f"{len(paths_for(600, 65_836)) + 1} object(s) written" in err.getvalue()
    assert client.stat_object("tlog", "1101-0105/tile/0/000").etag == full.etag  # immutable: never rewritten
    note, entries = node_state(data)
    read = read_log(fetch, keys)
    assert (read.note, read.entries, read.checkpoint.size) == (note, entries, 65_836)
    assert len(fetch("tile/2/000.p/1")) == 32  # the root of the first 65,536 leaves, one hash wide

    # The same client reads the node's own tlog-tiles API, and finds the same log.
    with TestClient(create_app(Settings(data_dir=data))) as http:
        served = read_log(lambda p: http.get(f"/tlog/{p}").content, keys)
    assert (served.note, served.entries) == (read.note, read.entries)

    # A tile changed in the bucket is caught.
    tampered = bytearray(fetch("tile/0/001"))
    tampered[0] ^= 1
    client.put_object("tlog", "1101-0105/tile/0/001", io.BytesIO(bytes(tampered)), len(tampered))
    with pytest.raises(TileMismatchError):
        read_log(fetch, keys)


@pytest.mark.slow
def test_the_sequencer_publishes_as_it_seals(tmp_path: Path, s3_server: MotoServer) -> None:
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_S3_ENDPOINT=s3_server.endpoint, SIFA_S3_SECURE="false", SIFA_PUBLISH_BUCKET="tlog-live",
                 SIFA_S3_ACCESS_KEY=s3_server.access_key, SIFA_S3_SECRET_KEY=s3_server.secret_key,
                 SIFA_PUBLISH_INTERVAL_SECONDS="0.2")  # fmt: skip
    try:
        with Writer.on(node.url, admin, clients=2) as load:
            time.sleep(1.0)
        assert load.acked > 0
        size = node.sealing()["tree_size"]
        client = Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False)
        keys = [load_signer(data).verifier]
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(Exception):
                read = read_log(bucket_fetch(client, "tlog-live"), keys)
                if read.checkpoint.size == size:
                    break
            assert time.monotonic() < deadline, "the bucket did not catch up with the log"
            time.sleep(0.2)
        served = read_log(lambda p: httpx2.get(f"{node.url}/tlog/{p}", timeout=10).content, keys)
        assert served.checkpoint.size >= size and served.entries[:size] == read.entries
    finally:
        node.stop()
