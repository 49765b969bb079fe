"""The FastAPI application: ``create_app(settings)`` builds services in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.deps import Services
from api.node import load_config, load_signer, open_tree_store
from api.routes import log, tiles
from api.settings import Settings
from ledger.log import MerkleLog


def create_app(settings: Settings) -> FastAPI:
    """The node's HTTP app over the data dir and backends ``settings`` name."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = load_config(settings.data_dir)
        store = open_tree_store(settings.data_dir, settings.database_url)
        app.state.services = Services(config, MerkleLog(store), load_signer(settings.data_dir))
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="sifa court node",
        summary="司法 — a court's node of a judicial evidence chain",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(log.router)
    app.include_router(tiles.router)

    @app.get("/healthz", tags=["node"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
