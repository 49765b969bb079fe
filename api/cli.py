"""The ``sifa`` command: init a node, serve it, print its trust entry.

Exit codes: 0 ok, 1 a finding (audit, monitor alarm; ``seal --once``: an event that cannot be
sealed; ``serve``: its sequencer died and could not be restarted), 2 usage or input error (one
readable line on stderr), 3 ``seal --once``: another sequencer seals this log (nothing was sealed).
Every command runs with umask 077: what a node writes is its user's alone (api/node.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import unicodedata
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from api import setup_cli
from api.node import (
    UMASK,
    NodeError,
    check_init,
    init_node,
    issue_admin,
    load_config,
    load_leaf_secret,
    load_signer,
    load_trust_file,
    load_witness_signer,
    log_hasher,
    settle_heap,
)
from api.settings import Settings
from api.setup_cli import write_credential
from ledger.errors import SifaError

if TYPE_CHECKING:
    from dossier.sealer import Stop
    from ledger.log import MerkleLog

SEQUENCER_BUSY = 3  # `sifa seal --once` exit code: another sequencer holds the log's lock
SHUTDOWN_GRACE = 10  # seconds `sifa serve` gives requests in flight once told to stop; then they are cut


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sifa", description="司法 — a court's node of a judicial evidence chain")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a node: data dir, log key, empty signed log")
    init.add_argument("data_dir", type=Path)
    init.add_argument("--court", required=True, help="court code, e.g. 1101-0105")
    init.add_argument("--name", required=True, help="the court's name, e.g. 北京市朝阳区人民法院")
    init.add_argument("--designator", help="the court's 代字 in case numbers, e.g. 京0105 (checked on opening)")
    init.add_argument("--credential-file", type=Path, help="write the administrator's credential here (0600), "
                      "not to stdout")  # fmt: skip
    init.add_argument(
        "--crypto",
        choices=("sha256", "gm"),
        default="sha256",
        help="the log's suite, fixed for good: sha256 (SHA-256, Ed25519) or gm (国密: SM3, SM2, SM4)",
    )
    serve = sub.add_parser("serve", help="run the node's HTTP API (SIFA_* settings)")
    serve.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    serve.add_argument("--host", help="overrides SIFA_HOST")
    serve.add_argument("--port", type=int, help="overrides SIFA_PORT")
    serve.add_argument("--workers", type=int, default=1, help="API processes sharing the port (api/workers.py)")
    serve.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # one of `sifa serve --workers`'s
    seal = sub.add_parser("seal", help="run the sequencer: seal events into the log, sign checkpoints")
    seal.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    seal.add_argument(
        "--once",
        action="store_true",
        help="seal what is waiting, then exit (3 at once if another sequencer seals this log)",
    )
    seal.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # `sifa serve`: stop when it is gone
    aud = sub.add_parser("audit", help="re-verify every event, leaf, file and checkpoint the node holds")
    aud.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    aud.add_argument("--dossier", help="only this dossier's events and files")
    aud.add_argument("--json", action="store_true", help="print the report as one JSON object")
    aud.add_argument("--execution", action="store_true",
                     help="with --dossier: audit its execution (every operation, who did and approved it)")  # fmt: skip
    mon = sub.add_parser("monitor", help="follow a court's log; alarm on a fork, a rollback or a stalled log")
    mon.add_argument("log_url", help="the node's base URL, e.g. https://sifa.example-court.cn")
    mon.add_argument("--trust", required=True, type=Path, help="trust file naming the log's key")
    mon.add_argument("--state", type=Path, default=Path("sifa-monitor.json"), help="where the last checkpoint is kept")
    mon.add_argument("--interval", type=float, default=60.0, help="seconds between rounds")
    mon.add_argument("--stall", type=float, default=3600.0, help="alarm when no new checkpoint for this long")
    mon.add_argument("--once", action="store_true", help="one round, then exit (0 fine, 1 alarm)")
    ret = sub.add_parser("retrieve", help="retrieve a dossier transferred to this court from the lower court's node")
    ret.add_argument("--from", dest="from_court", required=True, help="the lower court's code, e.g. 1101-0105")
    ret.add_argument("--dossier", required=True, help="the dossier's id")
    ret.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    admin = sub.add_parser("admin", help="issue a new administrator credential by local file access (a lost one)")
    admin.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    admin.add_argument("--name", default="administrator", help="the new administrator's name")
    restore = sub.add_parser("restore", help="put the right bytes of files found corrupt back into the blob store; "
                             "with --from, make a node in a new data dir from a backup")  # fmt: skip
    restore.add_argument("files", nargs="*", type=Path, help="the files' right copies (from a backup)")
    restore.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    restore.add_argument("--from", dest="from_backup", type=Path, help="a backup dir (sifa backup): restore a node")
    restore.add_argument("--snapshot", help="with --from: the snapshot to restore (default: the newest)")
    bak = sub.add_parser("backup", help="snapshot the node into a backup dir (databases, keys, files by content "
                         "address, incremental)")  # fmt: skip
    bak.add_argument("dest", type=Path, help="the backup dir (snapshots and files accumulate in it)")
    bak.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    bak.add_argument("--json", action="store_true", help="print the report as one JSON object")
    fix = sub.add_parser("fixity", help="re-hash every kept file now (SIFA_FIXITY_*); repair and record what is found")
    fix.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    fix.add_argument("--json", action="store_true", help="print the report as one JSON object")
    pub = sub.add_parser("publish", help="publish the log to SIFA_PUBLISH_BUCKET now (tlog-tiles layout)")
    pub.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    setup_cli.add_parsers(sub)
    rot = sub.add_parser("rotate-key", help="hand the log to a new key, announced in the log (node stopped)")
    rot.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    rot.add_argument("--compromised-from", type=int, help="the old key is compromised from this leaf index on")
    dep = sub.add_parser("anchor-deploy", help="put the anchor contract on an EVM chain; print its address")
    dep.add_argument("--rpc", required=True, help="the chain node's JSON-RPC URL")
    dep.add_argument("--key-file", required=True, type=Path, help="the court account's private key (0x hex)")
    trust = sub.add_parser("trust-entry", help="print this node's entry for a verifier's trust file")
    trust.add_argument("data_dir", type=Path)
    trust.add_argument("--witness", action="store_true", help="the node's witness key (a 'witnesses' entry)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    umask = os.umask(UMASK)
    try:
        if args.command == "init":
            return _init(args)
        if args.command in setup_cli.COMMANDS:
            return setup_cli.run(args)
        if args.command == "trust-entry":
            config = load_config(args.data_dir)
            if args.witness:
                entry = {"name": config.name, "key": load_witness_signer(args.data_dir).verifier.vkey()}
            else:
                entry = {"origin": config.origin, "name": config.name, "crypto": config.crypto,
                         "key": load_signer(args.data_dir).verifier.vkey()}  # fmt: skip
            print(json.dumps(entry, ensure_ascii=False))
            return 0
        if args.command == "admin":
            return _admin(args)
        if args.command == "anchor-deploy":
            from api.chain import deploy_contract, read_chain_key

            address = deploy_contract(args.rpc, read_chain_key(args.key_file))
            print(f"sifa anchor-deploy: set SIFA_CHAIN_CONTRACT={address} (docs/anchoring.md)", file=sys.stderr)
            print(address)
            return 0
        if args.command == "rotate-key":
            from api.keys import rotate_key

            settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
            vkey, index = rotate_key(settings.data_dir, settings.database_url, args.compromised_from)
            print(f"sifa rotate-key: leaf {index} hands the log to the new key; checkpoints from size {index + 1} "
                  "are signed by it (docs/keys.md)", file=sys.stderr)  # fmt: skip
            print(vkey)
            return 0
        if args.command == "restore":
            return _restore(args)
        if args.command == "backup":
            return _backup(args)
        if args.command == "fixity":
            return _fixity(args)
        if args.command == "publish":
            return _publish(args)
        if args.command == "monitor":
            return _monitor(args)
        if args.command == "audit":
            return _audit(args)
        if args.command == "retrieve":
            return _retrieve(args)
        if args.command == "seal":
            return _seal(args)
        return _serve(args)
    except SifaError as exc:
        print(f"sifa: {exc.diagnostics()}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a setting out of range (SIFA_PORT=99999, --port 0)
        where = ", ".join(f"SIFA_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        print(f"sifa: bad setting: {where}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sifa: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    finally:
        os.umask(umask)  # main() called in-process (tests) leaves its caller's umask as it was


def _init(args: argparse.Namespace) -> int:
    """``sifa init``: every input checked before anything is made; on a failure part-way, what it made is
    removed again (a PostgreSQL tree store's first checkpoint excepted), so a second try starts clean."""
    credential = args.credential_file
    if credential is not None:
        if credential.exists() or credential.is_symlink():
            raise NodeError(f"{credential} exists; name a new file for the credential")
        if not credential.parent.is_dir() or not os.access(credential.parent, os.W_OK | os.X_OK):
            raise NodeError(f"{credential.parent} is not a directory this user can write the credential into")
    check_init(args.data_dir, args.court, args.name, args.designator, args.crypto)
    settings = Settings()
    existed = args.data_dir.is_dir()
    before = {p.name for p in args.data_dir.iterdir()} if existed else set()
    try:
        config = init_node(args.data_dir, args.court, args.name, settings.database_url, args.crypto,
                           designator=args.designator)  # fmt: skip
        token = issue_admin(args.data_dir, settings)
        if credential is not None:
            write_credential(credential, token)
    except BaseException:
        _undo_init(args.data_dir, existed, before)
        raise
    print(f"sifa: node {config.origin} ({config.name}, crypto {config.crypto}) created in {args.data_dir}",
          file=sys.stderr)  # fmt: skip
    if credential is not None:
        print(f"sifa: the administrator's credential is in {credential.resolve()} (mode 0600, stored on the "
              "node only as a hash): read it, keep it safe, then delete the file", file=sys.stderr)  # fmt: skip
        return 0
    print("sifa: the administrator's credential follows; it is shown once and stored only as a hash",
          file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def _undo_init(data_dir: Path, existed: bool, before: set[str]) -> None:
    """Remove what a failed ``sifa init`` made in ``data_dir`` (all of it, if it made the dir)."""
    if not existed:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for entry in data_dir.iterdir():
        if entry.name not in before:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _admin(args: argparse.Namespace) -> int:
    """A new administrator credential, for whoever can read the data dir (its key opens the store)."""
    from api.node import administrators, local_issuer

    settings = _settings(args.data_dir)
    name = unicodedata.normalize("NFC", args.name.strip())
    if not name or len(name) > 200 or not name.isprintable():
        raise NodeError("--name is 1 to 200 printable characters")
    config = load_config(settings.data_dir)
    by = local_issuer()
    token = issue_admin(settings.data_dir, settings, issued_by=by, name=name)
    print(f"sifa admin: a new administrator credential for {config.origin} was issued by local file access and "
          f"recorded as issued by {by}; it follows, shown once and stored only as a hash", file=sys.stderr)  # fmt: skip
    from api.principals import token_id

    others = [f"{i} ({n})" for i, n in administrators(settings.data_dir, settings) if i != str(token_id(token))]
    if others:
        print(f"sifa admin: the other administrators not revoked are {', '.join(others)}; revoke a lost one with "
              "DELETE /v1/principals/ID", file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def _settings(data_dir: Path | None) -> Settings:
    """The SIFA_* settings, ``--data-dir`` over SIFA_DATA_DIR."""
    return Settings(data_dir=data_dir) if data_dir else Settings()


def _backup(args: argparse.Namespace) -> int:
    """A snapshot of the node into a backup dir (api/backup.py); 1 if a file could not be copied whole."""
    from api.backup import backup

    settings = _settings(args.data_dir)
    report = backup(settings, args.dest, say=lambda s: None if args.json else print(f"sifa backup: {s}",
                                                                                   file=sys.stderr))  # fmt: skip
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    print(f"sifa backup: snapshot {report.snapshot} of a log of {report.tree_size} leaves in {args.dest}; "
          f"{report.files} file(s), {report.copied} copied ({report.copied_bytes} bytes), the rest there already",
          file=sys.stderr)  # fmt: skip
    if report.missing:
        print(f"sifa backup: {len(report.missing)} file(s) not copied, corrupt or gone (run sifa audit): "
              f"{', '.join(report.missing[:5])}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _publish(args: argparse.Namespace) -> int:
    """One publishing round (api/publish.py)."""
    from api.node import open_tree_store
    from api.publish import publisher_for
    from ledger.log import MerkleLog

    settings = _settings(args.data_dir)
    load_config(settings.data_dir)
    store = open_tree_store(settings.data_dir, settings.database_url)
    try:
        publisher = publisher_for(settings, MerkleLog(store, log_hasher(settings.data_dir)))
        size = publisher.publish()
    finally:
        store.close()
    print(f"sifa publish: the log of {size} leaves is in bucket {settings.publish_bucket}; {publisher.written} "
          "object(s) written", file=sys.stderr)  # fmt: skip
    return 0


def _fixity(args: argparse.Namespace) -> int:
    """One fixity sweep now, beside a running node (dossier/fixity.py); 1 if a file stays corrupt or gone."""
    from api.composition import open_node
    from api.maintenance import collect_unnamed, fixity_for, remember_sweep

    with open_node(_settings(args.data_dir)) as node:
        report = fixity_for(node.settings, node.dossiers, node.blobs, signer=node.signer, peers=node.peers).sweep()
        collected = collect_unnamed(node.settings, node.dossiers, node.blobs)
    remember_sweep(node.settings.data_dir, report)
    if args.json:
        print(json.dumps({**report.to_dict(), "collection": collected.to_dict() if collected else None},
                         ensure_ascii=False))  # fmt: skip
    if collected is not None and collected.collected:
        print(f"sifa fixity: {len(collected.collected)} file(s) no event names collected", file=sys.stderr)
    print(f"sifa fixity: {report.checked} file(s), {report.bytes} bytes re-hashed in {report.seconds:.1f} s; "
          f"{len(report.corrupt)} corrupt, {len(report.missing)} gone, {len(report.repaired)} repaired",
          file=sys.stderr)  # fmt: skip
    return 0 if report.clean else 1


def _restore(args: argparse.Namespace) -> int:
    """Re-check each file the node holds under the copy's hash; put the copy back where it is corrupt.
    With ``--from``: make a node in a new data dir from a backup (api/backup.py)."""
    import hashlib

    from api.node import open_blob_store
    from storage.errors import BlobCorruptError, BlobNotFoundError

    settings = _settings(args.data_dir)
    if args.from_backup is not None:
        from api.backup import restore

        if args.files:
            raise NodeError("sifa restore takes either files or --from BACKUP, not both")
        done = restore(args.from_backup, args.snapshot, settings)
        print(f"sifa restore: snapshot {done.snapshot} restored into {settings.data_dir}: a log of "
              f"{done.tree_size} leaves, {done.files} file(s); run sifa audit, then start the node (it checks its "
              "witnesses before it seals, docs/administration.md)", file=sys.stderr)  # fmt: skip
        return 0
    if args.snapshot is not None:
        raise NodeError("--snapshot goes with --from BACKUP")
    if not args.files:
        raise NodeError("sifa restore needs files (the right copies of corrupt ones) or --from BACKUP")
    load_config(settings.data_dir)
    blobs = open_blob_store(settings.data_dir, settings)
    try:
        for path in args.files:
            h = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            sha = h.hexdigest()
            if not blobs.quarantined(sha) and not blobs.exists(sha):
                raise NodeError(f"{path} hashes to {sha}, which is no file this node holds; nothing was stored")
            try:
                blobs.verify(sha)
            except (BlobCorruptError, BlobNotFoundError):  # corrupt, or quarantined and since gone
                with path.open("rb") as f:
                    blobs.put(f, sha)
                print(f"sifa restore: {path}: file {sha} restored", file=sys.stderr)
            else:
                print(f"sifa restore: {path}: file {sha} is whole; nothing to do", file=sys.stderr)
    finally:
        blobs.close()
    return 0


def _seal(args: argparse.Namespace) -> int:
    """The sequencer: takes the log's sequencer lock first (``--once``: or exits 3 at once; else
    waits for it), then opens the node and seals until SIGTERM or SIGINT (or its parent's death)."""
    from api.composition import open_node, start_companions
    from api.lifecycle import StopFlag, die_with_parent
    from api.node import check_events_key, load_events_key, open_tree_store
    from api.server import check_trust_files
    from dossier.sealer import hold_lock
    from ledger.store import SequencerBusyError

    stop = StopFlag().on_signals()
    if args.parent:  # a sequencer outliving its node (killed with SIGKILL) would seal on alone
        die_with_parent(args.parent, stop)
    settings = _settings(args.data_dir)
    load_config(settings.data_dir)
    load_signer(settings.data_dir)  # a sequencer that cannot seal exits before it takes the lock, not after
    load_events_key(settings.data_dir, load_config(settings.data_dir).crypto)
    check_events_key(settings.data_dir, settings)
    check_trust_files(settings)  # a bad SIFA_WITNESSES or SIFA_PEERS is refused as such, not after the lock
    tree = open_tree_store(settings.data_dir, settings.database_url)
    try:
        if args.once:
            try:
                lease = tree.sequencer_lock()
            except SequencerBusyError as exc:
                print(f"sifa seal: {exc.diagnostics()}; nothing was sealed", file=sys.stderr)
                return SEQUENCER_BUSY
        else:
            waited = hold_lock(tree, stop)
            if waited is None:
                return 0  # stopped while another sequencer held the lock
            lease = waited
        with lease, open_node(settings, tree=tree) as node:
            sealer = node.sealer
            if settings.witnesses and not _behind_witnesses_ok(args, settings, node.log, stop):
                return 1 if args.once else 0
            if args.once:
                n = sealer.seal()
                print(f"sifa seal: {n} event(s) sealed; the log has {sealer.log.size} leaves", file=sys.stderr)
                if sealer.stall is not None:
                    about = ", ".join(f"{k} {v}" for k, v in sealer.stall.about.items())
                    print(f"sifa seal: {about} cannot be sealed: {sealer.stall.reason}; nothing after it is sealed "
                          "(docs/operations.md)", file=sys.stderr)  # fmt: skip
                    return 1
                return 0
            start_companions(node, stop)  # witnessing, fixity, publishing: beside the sealing
            settle_heap()
            sealer.run(stop, settings.seal_interval_seconds, lease)
        return 0
    finally:
        tree.close()


def _behind_witnesses_ok(args: argparse.Namespace, settings: Settings, merkle: MerkleLog, stop: Stop) -> bool:
    """Whether the sequencer may seal: not while its witnesses have cosigned more (api/forkguard.py)."""
    from api.forkguard import ask, wait_until_safe
    from api.peers import client_tls

    assert settings.witnesses is not None
    trust, tls = load_trust_file(settings.witnesses), client_tls(settings.tls_ca)
    if args.once:
        verdict = ask(merkle, trust, tls=tls)
        if verdict.behind and not settings.seal_behind_witnesses:
            print(f"sifa seal: refused: {verdict.reason()}; nothing was sealed", file=sys.stderr)
            return False
        return True
    return wait_until_safe(merkle, trust, settings.data_dir, stop, allow_behind=settings.seal_behind_witnesses,
                           tls=tls)  # fmt: skip


def _monitor(args: argparse.Namespace) -> int:
    from api.lifecycle import StopFlag
    from verifier.monitor import MonitorInputError, check

    trust = load_trust_file(args.trust)
    stop = StopFlag().on_signals() if not args.once else None
    while True:
        try:
            result = check(args.log_url, trust, args.state, stall=args.stall)
        except MonitorInputError as exc:
            if args.once:
                raise NodeError(str(exc)) from None
            print(f"sifa monitor: {exc}; trying again", file=sys.stderr)
        else:
            print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
            if not result.ok:
                print(f"sifa monitor: ALARM {result.alarm}: {result.detail}", file=sys.stderr)
                return 1
            if args.once:
                return 0
        if stop is not None and stop.wait(args.interval):
            return 0  # SIGTERM or SIGINT: stopped between rounds


def _audit(args: argparse.Namespace) -> int:
    from api.composition import open_node
    from dossier.audit import audit

    tty = sys.stderr.isatty() and not args.json

    def progress(stage: str, done: int, total: int) -> None:
        if tty:
            print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr, flush=True)

    if args.dossier is not None:
        try:
            uuid.UUID(args.dossier)
        except ValueError:
            raise NodeError(f"--dossier {args.dossier!r} is no dossier id (a UUID)") from None
    if args.execution:
        return _audit_execution(args)
    with open_node(_settings(args.data_dir)) as node:
        if args.dossier is not None:
            node.dossiers.get(args.dossier, copy=False)  # no such dossier: DossierNotFound, one line
        report = audit(node.dossiers, node.log, node.blobs, node.signer.verifier,
                       secret=load_leaf_secret(node.settings.data_dir), dossier=args.dossier,
                       progress=progress)  # fmt: skip
    if tty:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    for f in report.findings:
        print(f"sifa audit: {f.kind} at {f.where}: {f.detail}", file=sys.stderr)
    print(f"sifa audit: {report.events} events, {report.leaves} leaves ({report.unsealed} not yet sealed), "
          f"{report.blobs} files, {report.checkpoints} checkpoints: "
          + ("clean" if report.clean else f"{len(report.findings)} finding(s)"), file=sys.stderr)  # fmt: skip
    return 0 if report.clean else 1


def _audit_execution(args: argparse.Namespace) -> int:
    """``sifa audit --execution --dossier D``: docs/execution.md; exit 1 if a sensitive operation is in
    effect without another principal's approval."""
    from api.composition import open_node
    from dossier.execution import audit_dossier

    if args.dossier is None:
        raise NodeError("--execution audits one execution case: give --dossier")
    with open_node(_settings(args.data_dir)) as node:
        report = audit_dossier(node.dossiers, node.log, args.dossier)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    for op in report["operations"]:
        approved = f", approved by {op['approved_by']}" if op["approved_by"] else ""
        print(f"sifa audit: {op['kind']} by {op['actor']} ({op['role']}) at event {op['version']}{approved}"
              f"{'' if op['effective'] else ' — awaiting approval, not in effect'}", file=sys.stderr)  # fmt: skip
    for v in report["violations"]:
        print(f"sifa audit: VIOLATION {v['operation_id']}: {v['problem']}", file=sys.stderr)
    print(f"sifa audit: execution of {report['dossier']}: {len(report['operations'])} operations, "
          f"{len(report['awaiting_approval'])} awaiting approval, "
          + ("clean" if report["clean"] else f"{len(report['violations'])} violation(s)"), file=sys.stderr)  # fmt: skip
    return 0 if report["clean"] else 1


def _retrieve(args: argparse.Namespace) -> int:
    from api.composition import open_node
    from api.peers import fetcher
    from api.schemas import imported_dossier
    from dossier.usecases import retrieve_from

    tty = sys.stderr.isatty()
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if tty:
            rate = done / max(time.monotonic() - started, 1e-6) / 1e6
            print(f"\rsifa retrieve: {done / 1e6:,.0f} / {total / 1e6:,.0f} MB, {rate:,.0f} MB/s", end="",
                  file=sys.stderr, flush=True)  # fmt: skip

    with open_node(_settings(args.data_dir)) as node:
        if node.peers is None:
            raise NodeError("no peer courts are configured: set SIFA_PEERS to a trust file with their url")
        imported = retrieve_from(node.dossiers, node.peers, args.from_court, args.dossier,
                                 fetch=fetcher(node.signer, node.settings.tls_ca), actor=f"cli:{node.signer.name}",
                                 progress=progress)  # fmt: skip
    if tty:
        print(file=sys.stderr)
    print(json.dumps(imported_dossier(imported).model_dump(), ensure_ascii=False))
    print(f"sifa retrieve: {imported.case_number} from court {imported.from_court}: {imported.events} events and "
          f"{imported.files} files verified and imported", file=sys.stderr)  # fmt: skip
    return 0


def _preflight(settings: Settings) -> None:
    """What the node's start-up needs, checked before uvicorn runs it: the keys parse, the stores open,
    the port is free. Raises NodeError (or the store's own SifaError)."""
    import socket

    from api.node import check_events_key, load_events_key, open_tree_store

    load_signer(settings.data_dir)
    load_events_key(settings.data_dir, load_config(settings.data_dir).crypto)
    open_tree_store(settings.data_dir, settings.database_url).close()
    check_events_key(settings.data_dir, settings)
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise NodeError(f"cannot listen on {settings.host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise NodeError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None


def _serve(args: argparse.Namespace) -> int:
    import signal

    import uvicorn

    from api.app import create_app
    from api.server import check_serving, raise_open_files_limit, uvicorn_options

    overrides = {
        k: v for k, v in (("data_dir", args.data_dir), ("host", args.host), ("port", args.port)) if v is not None
    }
    settings = Settings(**overrides)
    load_config(settings.data_dir)  # refuse early, with one line, when there is no node
    check_serving(settings)  # TLS files, https:// peers: refused now, in one line
    if not 1 <= args.workers <= 64:
        raise NodeError("--workers is 1 to 64")
    sockets = None
    if args.worker_of is None:
        _preflight(settings)  # keys, stores, the port: refused now, in one line, not as a start-up traceback
        if args.workers > 1:
            from api.workers import run_workers

            return run_workers(settings, args.workers, grace=SHUTDOWN_GRACE)
    else:
        from api.workers import reuse_port_socket

        sockets = [reuse_port_socket(settings)]
    raise_open_files_limit(settings)  # each connection is an open file
    app = create_app(settings, owns_process=True)
    # uvicorn's own SIGTERM/SIGINT handlers only set a flag; it then stops taking requests, answers
    # those in flight and runs the app's shutdown (which stops the sequencer, docs/operations.md).
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=SHUTDOWN_GRACE,
                                           **uvicorn_options(settings)))  # fmt: skip
    app.state.stop_server = lambda: setattr(server, "should_exit", True)
    if args.worker_of is not None:
        from api.workers import follow_parent

        follow_parent(args.worker_of, app.state.stop_server, SHUTDOWN_GRACE + 5)
    # Before uvicorn takes the signals over (and after it gives them back, when it re-raises the one
    # that stopped it), a signal only sets its flag as well: the node then stops in order, exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    server.run(sockets=sockets)
    if getattr(app.state, "sequencer_failed", False):
        print("sifa serve: the sequencer died and could not be restarted; the node stopped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
