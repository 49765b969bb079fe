"""A court node's data dir: config, log key, tree store — created once, opened at start.

Only the node's user may read it: the dir is 0700, every file the node writes 0600
(SQLite's -wal and -shm files take their database's mode), blobs 0400 in 0700
folders (storage/filesystem.py). Node commands run with umask 077 (api/cli.py), and
a data dir an older sifa left looser is tightened when it is opened.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from eventsourcing.cryptography import AESCipher

from api.principals import Principals
from api.settings import Settings
from dossier.application import AES_TOPIC, postgres_env, sqlite_env
from dossier.cipher import TOPIC as SM4_TOPIC
from dossier.cipher import SM4Cipher
from dossier.courts import DESIGNATOR, origin_for
from dossier.courts import ORIGIN_PREFIX as ORIGIN_PREFIX
from dossier.errors import InvalidDossierInputError
from dossier.fields import text
from ledger import boundedjson
from ledger.cosignature import CosignatureSigner
from ledger.errors import MalformedError, SifaError
from ledger.gm import SM2Signer
from ledger.hashing import Hasher
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, signer_from_skey
from ledger.store import TreeStore
from ledger.suite import GM, SUITES, suite_of_key
from ledger.trust import Trust, read_trust
from storage.blobstore import BlobStore

CONFIG = "node.json"
LOG_KEY = "log.key"
WITNESS_KEY = "witness.key"
WITNESS_DB = "witness.sqlite"
EVENTS_KEY = "events.key"
LEAF_SECRET = "leaf.secret"  # the node secret of sifa-leaf/2 (docs/privacy.md): salts, dossier references
COURTS = "courts.json"
TREE_DB = "tree.sqlite"
EVENTS_DB = "events.sqlite"
PRINCIPALS_DB = "principals.sqlite"
NONCES_DB = "nonces.sqlite"  # nonces of accepted node-to-node requests (api/peers.py)
YOUNG_COLLECTION = 10_000  # allocations between the cyclic collector's young passes (Python's default: 700)
# 法院代码: a province/city prefix and a court number, e.g. 1101-0105.
COURT_CODE = re.compile(r"[0-9]{4}-[0-9]{4}")
UMASK = 0o077  # node processes: nothing they create is open to group or others
OTHERS = 0o077

log = logging.getLogger(__name__)


class NodeError(SifaError):
    code = "node_error"


@dataclass(frozen=True)
class NodeConfig:
    court: str
    name: str
    origin: str
    # The log's crypto suite (ledger.suite), fixed at init: "sha256" (SHA-256, Ed25519, AES-GCM events) or
    # "gm" (SM3, SM2, SM4-GCM events; docs/gm.md). A config written before suites were named is sha256.
    crypto: str = "sha256"


def init_node(data_dir: Path, court: str, name: str, database_url: str = "", crypto: str = "sha256", *,
              designator: str | None = None) -> NodeConfig:  # fmt: skip
    """Create a node's data dir with a new log key of the ``crypto`` suite and an empty, signed log.

    Raises NodeError for a bad court code or suite, or a data dir that already holds a node.
    """
    check_init(data_dir, court, name, designator, crypto)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        data_dir.mkdir(mode=0o700)
    tighten(data_dir)
    config = NodeConfig(court, name.strip(), origin_for(court), crypto)
    gm = crypto == GM.name
    signer = SM2Signer.generate(config.origin) if gm else Ed25519Signer.generate(config.origin)
    _write_secret(data_dir / LOG_KEY, signer.skey())
    _write_secret(data_dir / EVENTS_KEY, SM4Cipher.create_key() if gm else AESCipher.create_key(32))
    _write_secret(data_dir / LEAF_SECRET, os.urandom(32).hex())
    own: dict[str, str | None] = {"code": court, "name": config.name, "level": "基层", "parent": None}
    if designator is not None:
        own["designator"] = designator
    courts = {"courts": [own]}
    _write_private(data_dir / COURTS, json.dumps(courts, ensure_ascii=False, indent=2) + "\n")
    store = open_tree_store(data_dir, database_url)
    try:
        MerkleLog(store, SUITES[crypto].hasher()).sign_checkpoint(signer)
    finally:
        store.close()
    _write_private(data_dir / CONFIG, json.dumps(config.__dict__, ensure_ascii=False, indent=2) + "\n")
    return config


def check_init(data_dir: Path, court: str, name: str, designator: str | None, crypto: str = "sha256") -> None:
    """Every input of ``init_node`` checked before anything is made. Raises NodeError."""
    if crypto not in SUITES:
        raise NodeError(f"--crypto is one of {', '.join(SUITES)}, not {crypto!r}")
    if not COURT_CODE.fullmatch(court):
        raise NodeError(f"court code {court!r} is not of the form 1101-0105")
    if designator is not None and not DESIGNATOR.fullmatch(designator):
        raise NodeError(f"court 代字 {designator!r} is not of the form 京0105")
    try:
        text(name.strip(), "court name")
    except InvalidDossierInputError as exc:
        raise NodeError(f"--name: {exc.diagnostics()}") from None
    if data_dir.exists() and not data_dir.is_dir():
        raise NodeError(f"{data_dir} is not a directory; nothing was changed")
    if (data_dir / CONFIG).exists():
        raise NodeError(f"{data_dir} already holds a node; nothing was changed")


def tighten(data_dir: Path) -> None:
    """Take group and other access off the data dir and the files directly in it (a dir an older sifa,
    or an operator's copy, left looser). Folders below are their owners' to tighten (the blob store
    does its own); inside a 0700 dir no other user reaches them anyway. Raises NodeError when the
    data dir itself cannot be made private."""
    try:
        mode = os.stat(data_dir).st_mode
        if mode & OTHERS:
            os.chmod(data_dir, stat.S_IMODE(mode) & ~OTHERS)
            log.warning("data dir %s was open to other users (%o): now %o", data_dir, stat.S_IMODE(mode),
                        stat.S_IMODE(mode) & ~OTHERS)  # fmt: skip
    except OSError as exc:
        raise NodeError(f"cannot make {data_dir} private to the node's user: {exc.strerror}") from exc
    for entry in os.scandir(data_dir):
        if entry.is_file(follow_symlinks=False):
            mode = entry.stat(follow_symlinks=False).st_mode
            if mode & OTHERS:
                try:
                    os.chmod(entry.path, stat.S_IMODE(mode) & ~OTHERS)
                except OSError as exc:
                    log.warning("could not take other users' access to %s away: %s", entry.path, exc.strerror)


def private_file(path: Path) -> Path:
    """``path``, made (empty) 0600 if it does not exist: for databases a library creates with its own
    mode (SQLite: 0644, and its -wal and -shm files after it)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


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


def issue_admin(data_dir: Path, settings: Settings, *, issued_by: str = "init", name: str = "administrator") -> str:
    """A new administrator's bearer token: the first (``sifa init``) or one issued by local file access
    (``sifa admin``), recorded as issued by ``issued_by``."""
    config = load_config(data_dir)
    principals = Principals(principals_env(data_dir, settings))
    try:
        return principals.issue(name=name, role="administrator", court=config.court, issued_by=issued_by)[1]
    finally:
        principals.close()


def administrators(data_dir: Path, settings: Settings) -> list[tuple[str, str]]:
    """The (id, name) of every administrator not revoked."""
    principals = Principals(principals_env(data_dir, settings))
    try:
        return [(i, principals.repository.get(UUID(i)).name) for i in principals.administrators()]
    finally:
        principals.close()


def local_issuer() -> str:
    """Who issues a credential by local file access: the operating system's user, as the record names them."""
    import pwd

    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return f"local:{user} (uid {uid}, sifa admin)"


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an interrupted init keeps no looser mode
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _pg(database_url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    d = {k: str(v) for k, v in conninfo_to_dict(database_url).items() if v is not None}
    return {"host": d.get("host", "127.0.0.1"), "port": d.get("port", "5432"), "user": d.get("user", "postgres"),
            "dbname": d.get("dbname", "postgres"), "password": d.get("password", "")}  # fmt: skip


def load_events_key(data_dir: Path, crypto: str = "sha256") -> str:
    """The key the events are encrypted with (AES: base64 of 16, 24 or 32 bytes; SM4 on a GM node: of 16).
    Raises NodeError."""
    path = data_dir / EVENTS_KEY
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        raise NodeError(f"{path} is missing: the events cannot be read without it (restore it from its "
                        "offline copy, docs/operations.md)") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"{path} cannot be read: {exc}") from None
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        raw = b""
    # sifa init makes an SM4 key (16 bytes) on a GM node, an AES-256 key (32 bytes) otherwise: a 16 byte
    # key on a SHA-256 node is an SM4 key (or AES-128), not this node's.
    want = 16 if crypto == GM.name else 32
    if len(raw) != want:
        _config_matches_log_key(data_dir, crypto)  # node.json edited to another suite: say that, not "restore"
        what = "a 16 byte SM4 key" if crypto == GM.name else "a 32 byte AES-256 key"
        raise NodeError(f"{path} is no events key of this {crypto} node (base64 of {what}); restore it from its "
                        "offline copy")  # fmt: skip
    return key


def _config_matches_log_key(data_dir: Path, crypto: str) -> None:
    """Raises NodeError when node.json names another suite than log.key's (the key is the truth: the
    log it signed is of its suite); a log.key that does not parse is load_signer's to report."""
    try:
        signer = signer_from_skey((data_dir / LOG_KEY).read_text())
    except (OSError, UnicodeDecodeError, SifaError, ValueError):
        return
    if not isinstance(signer, Ed25519Signer | SM2Signer):  # pragma: no cover - signer_from_skey makes only these
        return
    suite = suite_of_key(signer.verifier).name
    if suite != crypto:
        raise NodeError(
            f"{data_dir / CONFIG} says crypto {crypto!r}, but {data_dir / LOG_KEY} is a {suite} key: "
            f"node.json does not match this node's keys (its crypto is {suite!r})"
        )


def events_env(data_dir: Path, settings: Settings) -> dict[str, str]:
    """eventsourcing's environment for the court's events (SQLite file or PostgreSQL)."""
    crypto = load_config(data_dir).crypto
    key = load_events_key(data_dir, crypto)
    topic = SM4_TOPIC if crypto == GM.name else AES_TOPIC
    if settings.database_url:
        p = _pg(settings.database_url)
        return postgres_env(p["host"], int(p["port"]), p["user"], p["dbname"], p["password"], key, topic)
    return sqlite_env(str(private_file(data_dir / EVENTS_DB)), key, topic)


def check_events_key(data_dir: Path, settings: Settings) -> None:
    """Refuse a well-formed events.key that is not this node's (another node's, an old one): it would
    start, answer /healthz, and fail every request that reads an event. Raises NodeError."""
    from dossier.application import events_key_opens

    events, principals = events_env(data_dir, settings), principals_env(data_dir, settings)
    if not (events_key_opens(events) and events_key_opens(principals, Principals.name)):
        raise NodeError(f"{data_dir / EVENTS_KEY} does not open this node's events: restore this node's key from "
                        "its offline copy (docs/operations.md)")  # fmt: skip


def principals_env(data_dir: Path, settings: Settings) -> dict[str, str]:
    """The principals' own store: another SQLite file, or their own tables in PostgreSQL."""
    env = events_env(data_dir, settings)
    if not settings.database_url:
        env["SQLITE_DBNAME"] = str(private_file(data_dir / PRINCIPALS_DB))
    return env


def load_config(data_dir: Path) -> NodeConfig:
    """The node's config, read when a command starts on its data dir (which is tightened first).

    Raises NodeError: no node there, a damaged config, a data dir that cannot be made private.
    """
    try:
        raw = boundedjson.load_path(data_dir / CONFIG)
        config = NodeConfig(raw["court"], raw["name"], raw["origin"], raw.get("crypto", "sha256"))
        if config.crypto not in SUITES:
            raise ValueError(f"unknown crypto suite {config.crypto!r}")
    except FileNotFoundError as exc:
        raise NodeError(f"{data_dir} holds no node; run: sifa init {data_dir} --court CODE --name NAME") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NodeError(f"{data_dir / CONFIG} is damaged: {exc}") from exc
    tighten(data_dir)
    return config


def load_leaf_secret(data_dir: Path) -> bytes:
    """The node secret that keys the salts and dossier references of the log's leaves (docs/privacy.md):
    32 random bytes, hex, 0600, made by ``sifa init`` (or on first use by a data dir an older sifa made,
    whose leaves were all sifa-leaf/1). Fixed for the log: lost, no leaf can be opened again. Raises NodeError."""
    path = data_dir / LEAF_SECRET
    if not path.exists() and (data_dir / CONFIG).exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            _write_secret(path, os.urandom(32).hex())
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise NodeError(f"{path} is missing: the node cannot seal its log without it") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NodeError(f"{path} cannot be read as the node secret (hex): {exc}") from None
    if len(secret) < 32:
        raise NodeError(f"{path} holds {len(secret)} bytes; the node secret has at least 32")
    return secret


def load_signer(data_dir: Path) -> Ed25519Signer | SM2Signer:
    """The court log's signing key, of the suite the config names. Raises NodeError (missing, unreadable,
    no key, or a key of another suite than the log's)."""
    path = data_dir / LOG_KEY
    try:
        signer = signer_from_skey(path.read_text())
    except FileNotFoundError:
        raise NodeError(f"{path} is missing: the node cannot sign its log without it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"{path} cannot be read: {exc}") from None
    except (SifaError, ValueError) as exc:
        raise NodeError(f"{path} is no log signing key: {exc}") from None
    if not isinstance(signer, Ed25519Signer | SM2Signer):  # pragma: no cover - signer_from_skey makes only these
        raise NodeError(f"{path} is no log signing key")
    _config_matches_log_key(data_dir, load_config(data_dir).crypto)
    return signer


def log_hasher(data_dir: Path) -> Hasher:
    """The tree hasher of the node's log, as its config names the suite. Raises NodeError."""
    try:
        return SUITES[load_config(data_dir).crypto].hasher()
    except KeyError as exc:
        raise NodeError(f"this node's log hashes with SM3, which this Python lacks: {exc.args[0]}") from None


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

    return SQLiteTreeStore(private_file(data_dir / TREE_DB))


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
