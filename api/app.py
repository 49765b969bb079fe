"""The FastAPI application: ``create_app(settings)`` builds services in its lifespan."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.deps import Services
from api.node import (
    COURTS,
    events_env,
    load_config,
    load_signer,
    open_blob_store,
    open_tree_store,
    principals_env,
)
from api.principals import Principals
from api.routes import dossiers, log, principals, tiles, verify
from api.settings import Settings
from dossier.application import DossierApp
from dossier.courts import CourtRegistry
from dossier.sealer import Sealer
from ledger.log import MerkleLog


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives another process the same settings."""
    return {f"SIFA_{k.upper()}": str(v) for k, v in settings.model_dump().items()}


def start_sequencer(settings: Settings) -> subprocess.Popen[bytes]:
    """``sifa seal`` as a child process with the same settings."""
    command = [sys.executable, "-m", "api.cli", "seal", "--parent", str(os.getpid())]
    return subprocess.Popen(command, env={**os.environ, **settings_env(settings)})


def create_app(settings: Settings) -> FastAPI:
    """The node's HTTP app over the data dir and backends ``settings`` name."""

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
        sealer = Sealer(app_, merkle, signer, batch=settings.seal_batch)
        people = Principals(principals_env(data, settings))
        app.state.services = Services(config, settings, merkle, signer, app_, sealer, people, blobs, courts)
        stop = threading.Event()
        thread = threading.Thread(target=sealer.run, args=(stop, settings.seal_interval_seconds),
                                  name="sifa-sequencer", daemon=True)  # fmt: skip
        process = start_sequencer(settings) if settings.sequencer == "process" else None
        if process is None:
            thread.start()
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
    for module in (dossiers, principals, verify, log, tiles):
        app.include_router(module.router, responses=errors.RESPONSES)

    @app.get("/healthz", tags=["node"], openapi_extra={"x-roles": ["public"]})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
