"""The FastAPI application: ``create_app(settings)`` builds services in its lifespan."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import edge, errors
from api.deps import Services
from api.node import (
    COURTS,
    NONCES_DB,
    WITNESS_DB,
    events_env,
    load_config,
    load_signer,
    load_trust_file,
    load_witness_signer,
    open_blob_store,
    open_tree_store,
    principals_env,
    private_file,
    settle_heap,
)
from api.peers import NonceStore, PeerGate
from api.principals import Principals
from api.routes import dossiers, log, page, principals, tiles, transfer, verify, witness
from api.settings import Settings
from dossier.application import DossierApp
from dossier.courts import CourtRegistry
from dossier.sealer import Sealer
from ledger.log import MerkleLog
from ledger.witness import Witness
from ledger.witness_sqlite import SQLiteWitnessState


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives another process the same settings."""
    return {f"SIFA_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}


def start_sequencer(settings: Settings) -> subprocess.Popen[bytes]:
    """``sifa seal`` as a child process with the same settings."""
    command = [sys.executable, "-m", "api.cli", "seal", "--parent", str(os.getpid())]
    return subprocess.Popen(command, env={**os.environ, **settings_env(settings)})


def create_app(settings: Settings, *, owns_process: bool = False) -> FastAPI:
    """The node's HTTP app over the data dir and backends ``settings`` name. ``owns_process``:
    the app is all its process runs (``sifa serve``), so once started it settles the heap."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        data = settings.data_dir
        config = load_config(data)
        signer = load_signer(data)
        store = open_tree_store(data, settings.database_url)
        blobs = open_blob_store(data, settings)
        courts = CourtRegistry.from_file(data / COURTS)
        app_ = DossierApp(events_env(data, settings), blobs, courts, config.court)
        merkle = MerkleLog(store)
        asked = load_trust_file(settings.witnesses) if settings.witnesses else None
        sealer = Sealer(app_, merkle, signer, batch=settings.seal_batch, witnesses=asked.witnesses if asked else (),
                        quorum=asked.quorum if asked else 0)  # fmt: skip
        people = Principals(principals_env(data, settings))
        witness_state, witness = None, None
        if settings.witness_logs:
            logs = load_trust_file(settings.witness_logs).logs
            witness_state = SQLiteWitnessState(private_file(data / WITNESS_DB))
            witness = Witness(load_witness_signer(data), logs, witness_state)
        peers = load_trust_file(settings.peers) if settings.peers else None
        nonces = NonceStore(private_file(data / NONCES_DB))
        gate = PeerGate(peers, config.origin, settings.peer_window_seconds, nonces)
        app.state.services = Services(config, settings, merkle, signer, app_, sealer, people, blobs, courts, witness,
                                      peers, gate)  # fmt: skip
        stop = threading.Event()
        thread = threading.Thread(target=sealer.run, args=(stop, settings.seal_interval_seconds),
                                  name="sifa-sequencer", daemon=True)  # fmt: skip
        process = start_sequencer(settings) if settings.sequencer == "process" else None
        if process is None:
            thread.start()
        if owns_process:
            settle_heap()
        try:
            yield
        finally:
            stop.set()
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            else:
                thread.join(timeout=30)
            people.close()
            nonces.close()
            if witness_state is not None:
                witness_state.close()
            app_.close()
            blobs.close()
            store.close()

    app = FastAPI(
        title="sifa court node",
        summary="司法 — a court's node of a judicial evidence chain",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    edge.install(app, errors.error_response)  # credentials before bodies, bounded bodies
    for module in (dossiers, transfer, principals, verify, page, log, tiles):
        app.include_router(module.router, responses=errors.RESPONSES)
    app.include_router(witness.router, responses=errors.RESPONSES)  # add-checkpoint documents its own text answers

    @app.get("/healthz", tags=["node"], openapi_extra={"x-roles": ["public"]})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
