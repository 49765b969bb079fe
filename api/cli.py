"""The ``sifa`` command: init a node, serve it, print its trust entry.

Exit codes: 0 ok, 1 a finding (audit, monitor alarm; ``seal --once``: an event that cannot be
sealed; ``serve``: its sequencer died and could not be restarted), 2 usage or input error (one
readable line on stderr), 3 ``seal --once``: another sequencer seals this log (nothing was sealed).
Every command runs with umask 077: what a node writes is its user's alone (api/node.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from api.node import (
    UMASK,
    NodeError,
    init_node,
    issue_admin,
    load_config,
    load_signer,
    load_trust_file,
    load_witness_signer,
    settle_heap,
)
from api.settings import Settings
from dossier.application import DossierApp
from ledger.errors import SifaError
from ledger.store import TreeStore
from storage.blobstore import BlobStore

SEQUENCER_BUSY = 3  # `sifa seal --once` exit code: another sequencer holds the log's lock
SHUTDOWN_GRACE = 10  # seconds `sifa serve` gives requests in flight once told to stop; then they are cut


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sifa", description="司法 — a court's node of a judicial evidence chain")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a node: data dir, log key, empty signed log")
    init.add_argument("data_dir", type=Path)
    init.add_argument("--court", required=True, help="court code, e.g. 1101-0105")
    init.add_argument("--name", required=True, help="the court's name, e.g. 北京市朝阳区人民法院")
    serve = sub.add_parser("serve", help="run the node's HTTP API (SIFA_* settings)")
    serve.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    serve.add_argument("--host", help="overrides SIFA_HOST")
    serve.add_argument("--port", type=int, help="overrides SIFA_PORT")
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
    restore = sub.add_parser("restore", help="put the right bytes of files found corrupt back into the blob store")
    restore.add_argument("files", nargs="+", type=Path, help="the files' right copies (from a backup)")
    restore.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
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
            settings = Settings()
            config = init_node(args.data_dir, args.court, args.name, settings.database_url)
            token = issue_admin(args.data_dir, settings)
            print(f"sifa: node {config.origin} ({config.name}) created in {args.data_dir}", file=sys.stderr)
            print("sifa: the administrator's credential follows; it is shown once and stored only as a hash",
                  file=sys.stderr)  # fmt: skip
            print(token)
            return 0
        if args.command == "trust-entry":
            config = load_config(args.data_dir)
            if args.witness:
                entry = {"name": config.name, "key": load_witness_signer(args.data_dir).verifier.vkey()}
            else:
                entry = {"origin": config.origin, "name": config.name,
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


def _admin(args: argparse.Namespace) -> int:
    """A new administrator credential, for whoever can read the data dir (its key opens the store)."""
    from api.node import administrators, local_issuer

    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
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


@contextlib.contextmanager
def _node(data_dir: Path | None, tree: TreeStore | None = None) -> Iterator[tuple[Settings, DossierApp, TreeStore,
                                                                                   BlobStore]]:  # fmt: skip
    """``_open_node``, closed again on the way out (a ``tree`` store passed in stays open)."""
    settings, app, store, blobs = _open_node(data_dir, tree)
    try:
        yield settings, app, store, blobs
    finally:
        app.close()
        if tree is None:
            store.close()
        blobs.close()


def _open_node(data_dir: Path | None, tree: TreeStore | None = None) -> tuple[Settings, DossierApp, TreeStore,
                                                                              BlobStore]:  # fmt: skip
    """The settings, dossier application and stores of a node, for commands that run beside it
    (``tree``: its tree store, already open)."""
    from api.node import COURTS, events_env, open_blob_store, open_tree_store
    from dossier.courts import CourtRegistry

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    data = settings.data_dir
    config = load_config(data)
    store = tree if tree is not None else open_tree_store(data, settings.database_url)
    blobs = open_blob_store(data, settings)
    app = DossierApp(events_env(data, settings), blobs, CourtRegistry.from_file(data / COURTS), config.court)
    return settings, app, store, blobs


def _restore(args: argparse.Namespace) -> int:
    """Re-check each file the node holds under the copy's hash; put the copy back where it is corrupt."""
    import hashlib

    from api.node import open_blob_store
    from storage.errors import BlobCorruptError, BlobNotFoundError

    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
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
    import threading

    from api.lifecycle import StopFlag, die_with_parent
    from api.node import load_events_key, open_tree_store
    from api.peers import client_tls
    from api.witnessing import Witnessing
    from dossier.sealer import Sealer, hold_lock
    from ledger.log import MerkleLog
    from ledger.store import SequencerBusyError

    stop = StopFlag().on_signals()
    if args.parent:  # a sequencer outliving its node (killed with SIGKILL) would seal on alone
        die_with_parent(args.parent, stop)
    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    load_config(settings.data_dir)
    load_signer(settings.data_dir)  # a sequencer that cannot seal exits before it takes the lock, not after
    load_events_key(settings.data_dir)
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
        with lease, _node(args.data_dir, tree) as (settings, app, store, _):
            merkle = MerkleLog(store)
            sealer = Sealer(app, merkle, load_signer(settings.data_dir), batch=settings.seal_batch)
            if args.once:
                n = sealer.seal()
                print(f"sifa seal: {n} event(s) sealed; the log has {sealer.log.size} leaves", file=sys.stderr)
                if sealer.stall is not None:
                    about = ", ".join(f"{k} {v}" for k, v in sealer.stall.about.items())
                    print(f"sifa seal: {about} cannot be sealed: {sealer.stall.reason}; nothing after it is sealed "
                          "(docs/operations.md)", file=sys.stderr)  # fmt: skip
                    return 1
                return 0
            if settings.witnesses:  # checkpoints go to the witnesses, beside the sealing
                witnessing = Witnessing(merkle, load_trust_file(settings.witnesses), tls=client_tls(settings.tls_ca))
                threading.Thread(target=witnessing.run, args=(stop, settings.witness_interval_seconds),
                                 name="sifa-witnessing", daemon=True).start()  # fmt: skip
            if settings.chain_rpc_url:  # checkpoints written to an EVM chain, beside the sealing
                from api.chain import Anchoring, chain_anchor

                anchoring = Anchoring(merkle, chain_anchor(settings))
                threading.Thread(target=anchoring.run, args=(stop, settings.chain_interval_seconds),
                                 name="sifa-chain", daemon=True).start()  # fmt: skip
            if settings.tsa_list():  # trusted time for checkpoints, beside the sealing (docs/time.md)
                from api.tsa import Stamping

                stamping = Stamping(merkle, settings.tsa_list(), tls=client_tls(settings.tls_ca))
                threading.Thread(target=stamping.run, args=(stop, settings.tsa_interval_seconds),
                                 name="sifa-tsa", daemon=True).start()  # fmt: skip
            settle_heap()
            sealer.run(stop, settings.seal_interval_seconds, lease)
        return 0
    finally:
        tree.close()


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
    from dossier.audit import audit
    from ledger.log import MerkleLog

    tty = sys.stderr.isatty() and not args.json

    def progress(stage: str, done: int, total: int) -> None:
        if tty:
            print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr, flush=True)

    if args.dossier is not None:
        try:
            uuid.UUID(args.dossier)
        except ValueError:
            raise NodeError(f"--dossier {args.dossier!r} is no dossier id (a UUID)") from None
    with _node(args.data_dir) as (settings, app, store, blobs):
        if args.dossier is not None:
            app.get(args.dossier, copy=False)  # no such dossier: DossierNotFound, one line
        report = audit(app, MerkleLog(store), blobs, load_signer(settings.data_dir).verifier, dossier=args.dossier,
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


def _retrieve(args: argparse.Namespace) -> int:
    from api.peers import client_tls
    from api.routes.transfer import imported_dossier, retrieve_from

    tty = sys.stderr.isatty()
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if tty:
            rate = done / max(time.monotonic() - started, 1e-6) / 1e6
            print(f"\rsifa retrieve: {done / 1e6:,.0f} / {total / 1e6:,.0f} MB, {rate:,.0f} MB/s", end="",
                  file=sys.stderr, flush=True)  # fmt: skip

    with _node(args.data_dir) as (settings, app, _, _):
        if settings.peers is None:
            raise NodeError("no peer courts are configured: set SIFA_PEERS to a trust file with their url")
        signer = load_signer(settings.data_dir)
        imported = retrieve_from(app, signer, load_trust_file(settings.peers), args.from_court, args.dossier,
                                 actor=f"cli:{signer.name}", progress=progress,
                                 tls=client_tls(settings.tls_ca))  # fmt: skip
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

    from api.node import load_events_key, open_tree_store

    load_signer(settings.data_dir)
    load_events_key(settings.data_dir)
    open_tree_store(settings.data_dir, settings.database_url).close()
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
    _preflight(settings)  # keys, stores, the port: refused now, in one line, not as a start-up traceback
    raise_open_files_limit(settings)  # each connection is an open file
    app = create_app(settings, owns_process=True)
    # uvicorn's own SIGTERM/SIGINT handlers only set a flag; it then stops taking requests, answers
    # those in flight and runs the app's shutdown (which stops the sequencer, docs/operations.md).
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=SHUTDOWN_GRACE,
                                           **uvicorn_options(settings)))  # fmt: skip
    app.state.stop_server = lambda: setattr(server, "should_exit", True)
    # Before uvicorn takes the signals over (and after it gives them back, when it re-raises the one
    # that stopped it), a signal only sets its flag as well: the node then stops in order, exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
    server.run()
    if getattr(app.state, "sequencer_failed", False):
        print("sifa serve: the sequencer died and could not be restarted; the node stopped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
