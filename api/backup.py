"""Backups of a node (``sifa backup``) and a node made again from one (``sifa restore --from``).

A backup dir holds any number of snapshots and one content-addressed blob folder they share:

    BACKUP/blobs/ab/cd/<sha256>           every file the dossiers name, copied once (incremental), by a
                                          filesystem blob store rooted at BACKUP (its tmp/ beside)
    BACKUP/snapshots/<UTC time>/          one snapshot, complete once manifest.json is in it:
        node.json courts.json log.key events.key leaf.secret witness.key
        tree.sqlite events.sqlite principals.sqlite nonces.sqlite witness.sqlite   (SQLite online backup)
        postgres.dump                      (with SIFA_DATABASE_URL: pg_dump -Fc, one consistent snapshot)
        files.json                         sha256 -> size and retention of every file the events name
        manifest.json                      written last

Under load, SQLite databases are copied with SQLite's online backup API (a consistent copy of
each, taken while the node writes): the tree first, then the events, so that every sealed leaf
has its event in the snapshot; events stored after the tree was copied are sealed by the
restored node (the same leaves: a leaf is a function of its event and its position). Files are
copied after the events, each hashed as it streams from the blob store: a file an event names was
stored before its event, so it is there. Restore writes ``node.json`` last: a restore cut short
leaves no node.

Raises NodeError (one line, exit 2) for what an operator can fix: no node, no backup, a target
that already holds a node, a PostgreSQL snapshot without a database to restore it into.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.node import (
    CONFIG,
    COURTS,
    EVENTS_DB,
    EVENTS_KEY,
    LEAF_SECRET,
    LOG_KEY,
    NONCES_DB,
    PRINCIPALS_DB,
    TREE_DB,
    WITNESS_DB,
    WITNESS_KEY,
    NodeError,
    load_config,
    open_blob_store,
    open_tree_store,
    private_file,
    tighten,
)
from api.settings import Settings
from storage.blobstore import BlobStore
from storage.errors import StorageError
from storage.filesystem import FilesystemBlobStore, blob_path, fsync_dir

FORMAT = "sifa-backup/1"
MANIFEST = "manifest.json"
FILES = "files.json"
PG_DUMP = "postgres.dump"
SNAPSHOTS = "snapshots"
KEYS = (CONFIG, COURTS, LOG_KEY, EVENTS_KEY, LEAF_SECRET, WITNESS_KEY)  # the leaf secret: sifa-leaf/2's salts
# In this order: the tree before the events (every sealed leaf has its event in the snapshot).
SQLITE_DBS = (TREE_DB, EVENTS_DB, PRINCIPALS_DB, NONCES_DB, WITNESS_DB)
LOCAL_DBS = (NONCES_DB, WITNESS_DB)  # SQLite files a node keeps even on PostgreSQL
PAGES_PER_STEP = 1024  # SQLite online backup: pages copied per step; writers go on between steps

Say = Callable[[str], None]


@dataclass
class BackupReport:
    """What one ``sifa backup`` did."""

    snapshot: str
    tree_size: int
    files: int = 0
    copied: int = 0  # files not in the backup before (the rest were already there: incremental)
    copied_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # files the node could not give whole: corrupt or gone

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RestoreReport:
    snapshot: str
    tree_size: int
    files: int = 0
    restored: int = 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _copy_private(src: Path, dst: Path) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as out, src.open("rb") as f:
        shutil.copyfileobj(f, out)
        out.flush()
        os.fsync(out.fileno())


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API), fsync'd, 0600."""
    private_file(dst)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(str(dst))
        try:
            source.backup(target, pages=PAGES_PER_STEP)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()
    with dst.open("rb") as f:
        os.fsync(f.fileno())


def pg_tool(name: str) -> str:
    """The machine's ``pg_dump`` / ``pg_restore`` (PATH, else the newest /usr/lib/postgresql/*/bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if not candidates:
        raise NodeError(f"{name} is not installed: a node on PostgreSQL is backed up with the server's own tools")
    return str(candidates[0])


def _pg_env(database_url: str) -> tuple[list[str], dict[str, str]]:
    """(the connection arguments, the environment with its password) of a libpq conninfo."""
    from psycopg.conninfo import conninfo_to_dict

    d = {k: str(v) for k, v in conninfo_to_dict(database_url).items() if v is not None}
    env = {**os.environ}
    if d.get("password"):
        env["PGPASSWORD"] = d["password"]
    args = [f"--host={d.get('host', '127.0.0.1')}", f"--port={d.get('port', '5432')}",
            f"--username={d.get('user', 'postgres')}", f"--dbname={d.get('dbname', 'postgres')}"]  # fmt: skip
    return args, env


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=24 * 3600, check=False)
    if done.returncode != 0:
        raise NodeError(f"{what} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:] or done.returncode}")


def backup(settings: Settings, dest: Path, *, say: Say = lambda _: None) -> BackupReport:
    """Take a snapshot of the node at ``settings.data_dir`` into the backup dir ``dest``.

    Raises NodeError (no node; pg_dump missing or failing)."""
    data = settings.data_dir
    config = load_config(data)
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    tighten(dest)
    (dest / SNAPSHOTS).mkdir(exist_ok=True, mode=0o700)
    name = _now()
    partial = dest / SNAPSHOTS / f".partial-{name}"
    partial.mkdir(mode=0o700)
    for key in KEYS:
        if (data / key).exists():
            _copy_private(data / key, partial / key)
    if settings.database_url:
        args, env = _pg_env(settings.database_url)
        say("pg_dump")
        _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial / PG_DUMP}",
              *args], env, "pg_dump")  # fmt: skip
        os.chmod(partial / PG_DUMP, 0o600)
        dbs: tuple[str, ...] = LOCAL_DBS
    else:
        dbs = SQLITE_DBS
    for db in dbs:
        if (data / db).exists():
            say(db)
            _sqlite_copy(data / db, partial / db)
    tree = _tree_of(partial, settings)
    report = BackupReport(name, tree[0])
    files = _copy_files(settings, dest, report, say)
    _write_json(partial / FILES, files)
    manifest = {"format": FORMAT, "origin": config.origin, "court": config.court, "name": config.name,
                "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "database": "postgres" if settings.database_url else "sqlite", "tree_size": tree[0],
                "checkpoint": tree[1], "files": len(files), "missing": report.missing}  # fmt: skip
    _write_json(partial / MANIFEST, manifest)
    fsync_dir(partial)
    os.rename(partial, dest / SNAPSHOTS / name)
    fsync_dir(dest / SNAPSHOTS)
    return report


def _tree_of(snapshot: Path, settings: Settings) -> tuple[int, str | None]:
    """(tree size, newest checkpoint) of a snapshot's SQLite tree, or of the live PostgreSQL one
    (pg_dump's snapshot is at least as new; the manifest says at least this)."""
    if settings.database_url:
        store = open_tree_store(settings.data_dir, settings.database_url)
    else:
        from ledger.sqlite import SQLiteTreeStore

        store = SQLiteTreeStore(snapshot / TREE_DB)
    try:
        kept = store.checkpoint()
        return store.state().size, None if kept is None else kept[1]
    finally:
        store.close()


def _copy_files(settings: Settings, dest: Path, report: BackupReport, say: Say) -> dict[str, dict[str, Any]]:
    """Every file the node's events name, into ``dest/blobs`` unless already there; hashed as copied."""
    from api.composition import open_node
    from dossier.files import referenced_files

    files: dict[str, dict[str, Any]] = {}
    kept = FilesystemBlobStore(dest)  # BACKUP/blobs/ab/cd/<sha256>: a blob store of the node's own kind
    with open_node(settings) as node:
        blobs, app = node.blobs, node.dossiers
        for sha, _dossier in referenced_files(app):
            if sha in files:
                continue
            try:
                info = blobs.stat(sha)
            except StorageError:
                report.missing.append(sha)
                continue
            files[sha] = {"size": info.size,
                          "locked_until": info.locked_until.isoformat() if info.locked_until else None}  # fmt: skip
            if kept.exists(sha) and kept.stat(sha).size == info.size:
                continue
            if not _copy_blob(blobs, sha, kept):
                report.missing.append(sha)
                del files[sha]
                continue
            report.copied += 1
            report.copied_bytes += info.size
            if report.copied % 100 == 0:
                say(f"files: {report.copied} copied")
    report.files = len(files)
    return files


def _copy_blob(blobs: BlobStore, sha: str, kept: FilesystemBlobStore) -> bool:
    """Stream one blob into the backup's store, verified as it streams: False if the node's copy is
    gone or corrupt (nothing is kept). Raises StorageError when the backup cannot store it."""
    unreadable: list[StorageError] = []

    def source() -> Iterator[bytes]:
        try:
            yield from blobs.read(sha)  # raises BlobCorruptError before its last chunk if it does not hash
        except StorageError as exc:
            unreadable.append(exc)
            raise

    try:
        kept.put(source(), sha)
    except StorageError:
        if not unreadable:
            raise
        return False
    return True


def _write_json(path: Path, value: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def snapshots(backup_dir: Path) -> list[str]:
    """The complete snapshots of a backup dir, oldest first."""
    root = backup_dir / SNAPSHOTS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def read_manifest(backup_dir: Path, snapshot: str | None) -> tuple[Path, dict[str, Any]]:
    """(the snapshot's folder, its manifest): the named snapshot, or the newest. Raises NodeError."""
    found = snapshots(backup_dir)
    if not found:
        raise NodeError(f"{backup_dir} holds no complete backup snapshot")
    name = snapshot or found[-1]
    if name not in found:
        raise NodeError(f"{backup_dir} holds no complete snapshot {name!r}; it holds {', '.join(found)}")
    folder = backup_dir / SNAPSHOTS / name
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NodeError(f"{folder / MANIFEST} is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise NodeError(f"{folder / MANIFEST} is no {FORMAT} manifest")
    return folder, manifest


def restore(backup_dir: Path, snapshot: str | None, settings: Settings, *, say: Say = lambda _: None) -> RestoreReport:
    """Make a node at ``settings.data_dir`` (empty, or not there) from a snapshot of ``backup_dir``.

    Raises NodeError: no such snapshot; the target holds a node already; a PostgreSQL snapshot and
    no SIFA_DATABASE_URL (or a SQLite one with it); a target database that is not empty."""
    folder, manifest = read_manifest(backup_dir, snapshot)
    data = settings.data_dir
    if (data / CONFIG).exists():
        raise NodeError(f"{data} already holds a node; restore into a new data dir (nothing was changed)")
    on_pg = manifest.get("database") == "postgres"
    if on_pg and not settings.database_url:
        raise NodeError("the snapshot is of a node on PostgreSQL: set SIFA_DATABASE_URL to an empty database")
    if not on_pg and settings.database_url:
        raise NodeError("the snapshot is of a node on SQLite: unset SIFA_DATABASE_URL to restore it")
    if on_pg:
        _check_empty(settings.database_url)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    tighten(data)
    for key in KEYS:
        if key != CONFIG and (folder / key).exists():
            _copy_private(folder / key, data / key)
    if on_pg:
        args, env = _pg_env(settings.database_url)
        say("pg_restore")
        _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              *args, str(folder / PG_DUMP)], env, "pg_restore")  # fmt: skip
    for db in LOCAL_DBS if on_pg else SQLITE_DBS:
        if (folder / db).exists():
            say(db)
            _sqlite_copy(folder / db, data / db)
    files: dict[str, dict[str, Any]] = json.loads((folder / FILES).read_text(encoding="utf-8"))
    report = RestoreReport(folder.name, int(manifest["tree_size"]), len(files))
    blobs = open_blob_store(data, settings)
    try:
        for sha, info in files.items():
            report.restored += _restore_blob(blobs, backup_dir, sha, info)
    finally:
        blobs.close()
    from api.forkguard import RESTORED

    (data / RESTORED).unlink(missing_ok=True)  # from a restore cut short before
    _write_json(data / RESTORED, {"backup": str(backup_dir), "snapshot": folder.name, "tree_size": report.tree_size,
                                  "restored": datetime.now(UTC).isoformat(timespec="seconds")})  # fmt: skip
    _copy_private(folder / CONFIG, data / CONFIG)  # last: a restore cut short leaves no node
    fsync_dir(data)
    return report


def _restore_blob(blobs: BlobStore, backup_dir: Path, sha: str, info: dict[str, Any]) -> int:
    """Put one file back (verified against its name as it is put); keep its retention. 1 if put."""
    if blobs.exists(sha):
        return 0
    path = blob_path(backup_dir, sha)
    try:
        with path.open("rb") as f:
            blobs.put(f, sha)  # DigestMismatchError: the backup's copy rotted
    except FileNotFoundError:
        raise NodeError(f"the backup has no copy of file {sha} its snapshot names") from None
    until = info.get("locked_until")
    if until:
        locked = datetime.fromisoformat(until)
        if locked > datetime.now(UTC):
            blobs.lock(sha, locked)
    return 1


def _check_empty(database_url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    except psycopg.Error as exc:
        raise NodeError(f"cannot reach the database to restore into: {exc}".splitlines()[0]) from None
    if row is not None and row[0]:
        raise NodeError("the database to restore into is not empty (create a new one); nothing was changed")
