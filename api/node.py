"""A court node's data dir: config, log key, tree store — created once, opened at start."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.cryptography import AESCipher

from api.principals import Principals
from api.settings import Settings
from dossier.application import postgres_env, sqlite_env
from ledger.cosignature import CosignatureSigner
from ledger.errors import MalformedError, SifaError
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.store import TreeStore
from ledger.trust import Trust, read_trust
from storage.blobstore import BlobStore

CONFIG = "node.json"
LOG_KEY = "log.key"
WITNESS_KEY = "witness.key"
WITNESS_DB = "witness.sqlite"
EVENTS_KEY = "events.key"
COURTS = "courts.json"
TREE_DB = "tree.sqlite"
EVENTS_DB = "events.sqlite"
PRINCIPALS_DB = "principals.sqlite"
NONCES_DB = "nonces.sqlite"  # nonces of accepted node-to-node requests (api/peers.py)
YOUNG_COLLECTION = 10_000  # allocations between the cyclic collector's young passes (Python's default: 700)
# 法院代码: a province/city prefix and a court number, e.g. 1101-0105.
COURT_CODE = re.compile(r"[0-9]{4}-[0-9]{4}")
ORIGIN_PREFIX = "sifa.court/"  # a court log's origin: this, then the court code


class NodeError(SifaError):
    code = "node_error"


@dataclass(frozen=True)
class NodeConfig:
    court: str
    name: str
    origin: str


def origin_for(court: str) -> str:
    """The stable log origin of a court, named in every checkpoint."""
    return ORIGIN_PREFIX + court


def init_node(data_dir: Path, court: str, name: str, database_url: str = "") -> NodeConfig:
    """Create a node's data dir with a new Ed25519 log key and an empty, signed log.

    Raises NodeError for a bad court code or a data dir that already holds a node.
    """
    if not COURT_CODE.fullmatch(court):
        raise NodeError(f"court code {court!r} is not of the form 1101-0105")
    if not name.strip():
        raise NodeError("the court's name is empty")
    if (data_dir / CONFIG).exists():
        raise NodeError(f"{data_dir} already holds a node; nothing was changed")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(court, name.strip(), origin_for(court))
    signer = Ed25519Signer.generate(config.origin)
    _write_secret(data_dir / LOG_KEY, signer.skey())
    _write_secret(data_dir / EVENTS_KEY, AESCipher.create_key(32))
    courts = {"courts": [{"code": court, "name": config.name, "level": "基层", "parent": None}]}
    (data_dir / COURTS).write_text(json.dumps(courts, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    store = open_tree_store(data_dir, database_url)
    try:
        MerkleLog(store).sign_checkpoint(signer)
    finally:
        store.close()
    (data_dir / CONFIG).write_text(json.dumps(config.__dict__, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return config


def witness_name(court: str) -> str:
    """The name this node cosigns other logs' checkpoints under."""
    return f"sifa.witness/{court}"


def load_witness_signer(data_dir: Path) -> CosignatureSigner:
    """The node's witness key (C2SP tlog-cosignature); made on first use, kept like the log key."""
    path = data_dir / WITNESS_KEY
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            _write_secret(path, CosignatureSigner.generate(witness_name(load_config(data_dir).court)).skey())
    return CosignatureSigner.from_skey(path.read_text())


def load_trust_file(path: Path) -> Trust:
    """A trust file a node is configured with (logs it witnesses, witnesses it asks). Raises NodeError."""
    try:
        return read_trust(path)
    except MalformedError as exc:
        raise NodeError(f"trust file {path} is unreadable: {exc.diagnostics()}") from exc


def issue_admin(data_dir: Path, settings: Settings) -> str:
    """The first administrator's bearer token (printed once by ``sifa init``)."""
    config = load_config(data_dir)
    principals = Principals(principals_env(data_dir, settings))
    try:
        return principals.issue(name="administrator", role="administrator", court=config.court, issued_by="init")[1]
    finally:
        principals.close()


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _pg(database_url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    d = {k: str(v) for k, v in conninfo_to_dict(database_url).items() if v is not None}
    return {"host": d.get("host", "127.0.0.1"), "port": d.get("port", "5432"), "user": d.get("user", "postgres"),
            "dbname": d.get("dbname", "postgres"), "password": d.get("password", "")}  # fmt: skip


def events_env(data_dir: Path, settings: Settings) -> dict[str, str]:
    """eventsourcing's environment for the court's events (SQLite file or PostgreSQL)."""
    key = (data_dir / EVENTS_KEY).read_text().strip()
    if settings.database_url:
        p = _pg(settings.database_url)
        return postgres_env(p["host"], int(p["port"]), p["user"], p["dbname"], p["password"], key)
    return sqlite_env(str(data_dir / EVENTS_DB), key)


def principals_env(data_dir: Path, settings: Settings) -> dict[str, str]:
    """The principals' own store: another SQLite file, or their own tables in PostgreSQL."""
    env = events_env(data_dir, settings)
    if not settings.database_url:
        env["SQLITE_DBNAME"] = str(data_dir / PRINCIPALS_DB)
    return env


def load_config(data_dir: Path) -> NodeConfig:
    try:
        raw = json.loads((data_dir / CONFIG).read_text(encoding="utf-8"))
        return NodeConfig(raw["court"], raw["name"], raw["origin"])
    except FileNotFoundError as exc:
        raise NodeError(f"{data_dir} holds no node; run: sifa init {data_dir} --court CODE --name NAME") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"{data_dir / CONFIG} is damaged: {exc}") from exc


def load_signer(data_dir: Path) -> Ed25519Signer:
    return Ed25519Signer.from_skey((data_dir / LOG_KEY).read_text())


def open_blob_store(data_dir: Path, settings: Settings) -> BlobStore:
    """The blob store the settings name: S3/MinIO if an endpoint is set, else files under the data dir."""
    if settings.s3_endpoint:
        from storage.s3 import S3BlobStore

        return S3BlobStore(
            settings.s3_endpoint,
            settings.s3_bucket,
            settings.s3_access_key,
            settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    from storage.filesystem import FilesystemBlobStore

    return FilesystemBlobStore(data_dir / "blobs")


def open_tree_store(data_dir: Path, database_url: str) -> TreeStore:
    """The tree store the settings name: PostgreSQL if a URL is set, else SQLite."""
    if database_url:
        from ledger.postgres import PostgresTreeStore

        return PostgresTreeStore(database_url)
    from ledger.sqlite import SQLiteTreeStore

    return SQLiteTreeStore(data_dir / TREE_DB)


def settle_heap() -> None:
    """Called once a node process (API, sequencer) has started, before it takes work.

    What start-up built — modules, routes, schemas, keys — lives as long as the process, yet the
    cyclic collector re-scanned all of it on every older-generation pass, and a request allocates
    hundreds of objects, so passes were frequent: a third of the API's CPU (docs/benchmarks.md).
    ``gc.freeze`` sets the start-up heap aside for good; young passes come every YOUNG_COLLECTION
    allocations. Cycles are still collected, just in fewer, larger passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
