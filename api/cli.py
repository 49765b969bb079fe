"""The ``sifa`` command: init a node, serve it, print its trust entry.

Exit codes: 0 ok, 2 usage or input error (one readable line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from api.node import init_node, issue_admin, load_config, load_signer
from api.settings import Settings
from dossier.application import DossierApp
from ledger.errors import SifaError
from ledger.store import TreeStore
from storage.blobstore import BlobStore


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
    seal.add_argument("--once", action="store_true", help="seal what is waiting, then exit")
    seal.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # `sifa serve`: stop when it is gone
    aud = sub.add_parser("audit", help="re-verify every event, leaf, file and checkpoint the node holds")
    aud.add_argument("--data-dir", type=Path, help="overrides SIFA_DATA_DIR")
    aud.add_argument("--dossier", help="only this dossier's events and files")
    aud.add_argument("--json", action="store_true", help="print the report as one JSON object")
    trust = sub.add_parser("trust-entry", help="print this node's entry for a verifier's trust file")
    trust.add_argument("data_dir", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
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
            entry = {"origin": config.origin, "name": config.name, "key": load_signer(args.data_dir).verifier.vkey()}
            print(json.dumps(entry, ensure_ascii=False))
            return 0
        if args.command == "audit":
            return _audit(args)
        if args.command == "seal":
            return _seal(args)
        return _serve(args)
    except SifaError as exc:
        print(f"sifa: {exc.diagnostics()}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sifa: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


def _open_node(data_dir: Path | None) -> tuple[Settings, DossierApp, TreeStore, BlobStore]:
    """The settings, dossier application and stores of a node, for commands that run beside it."""
    from api.node import COURTS, events_env, open_blob_store, open_tree_store
    from dossier.courts import CourtRegistry

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    data = settings.data_dir
    config = load_config(data)
    store, blobs = open_tree_store(data, settings.database_url), open_blob_store(data, settings)
    app = DossierApp(events_env(data, settings), blobs, CourtRegistry.from_file(data / COURTS), config.court)
    return settings, app, store, blobs


def _seal(args: argparse.Namespace) -> int:
    import signal
    import threading

    from dossier.sealer import Sealer
    from ledger.log import MerkleLog

    settings, app, store, blobs = _open_node(args.data_dir)
    data = settings.data_dir
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.parent:  # a sequencer outliving its node (killed with SIGKILL) would seal on alone

        def orphaned() -> None:
            while not stop.wait(0.5):
                if os.getppid() != args.parent:
                    stop.set()

        threading.Thread(target=orphaned, daemon=True).start()
    sealer = Sealer(app, MerkleLog(store), load_signer(data), batch=settings.seal_batch)
    try:
        if args.once:
            n = sealer.seal()
            print(f"sifa seal: {n} event(s) sealed; the log has {sealer.log.size} leaves", file=sys.stderr)
        else:
            sealer.run(stop, settings.seal_interval_seconds)
    finally:
        app.close()
        store.close()
        blobs.close()
    return 0


def _audit(args: argparse.Namespace) -> int:
    from dossier.audit import audit
    from ledger.log import MerkleLog

    settings, app, store, blobs = _open_node(args.data_dir)
    data = settings.data_dir
    tty = sys.stderr.isatty() and not args.json

    def progress(stage: str, done: int, total: int) -> None:
        if tty:
            print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        report = audit(app, MerkleLog(store), blobs, load_signer(data).verifier, dossier=args.dossier,
                       progress=progress)  # fmt: skip
    finally:
        app.close()
        store.close()
        blobs.close()
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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("host", args.host), ("port", args.port)) if v}
    settings = Settings(**overrides)
    load_config(settings.data_dir)  # refuse early, with one line, when there is no node
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
