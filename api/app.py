"""The FastAPI application: ``create_app(settings)`` opens the node (api/composition.py) in its lifespan."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api import edge, errors
from api.composition import open_node, start_companions
from api.health import Health, health
from api.keys import serving
from api.lifecycle import STOP_WAIT, StopFlag, Supervisor
from api.node import settle_heap
from api.routes import (
    certificate,
    console,
    dossiers,
    execution,
    forms,
    listing,
    log,
    page,
    principals,
    records,
    service,
    tiles,
    transfer,
    verify,
    witness,
)
from api.settings import Settings
from api.streaming import BodySlots


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives another process the same settings."""
    return {f"SIFA_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}


def sequencer_supervisor(settings: Settings, on_give_up: Callable[[], None]) -> Supervisor:
    """``sifa seal`` as a child process with the same settings, kept running."""
    command = [sys.executable, "-m", "api.cli", "seal", "--parent", str(os.getpid())]
    return Supervisor(command, {**os.environ, **settings_env(settings)}, on_give_up=on_give_up)


def create_app(settings: Settings, *, owns_process: bool = False) -> FastAPI:
    """The node's HTTP app over the data dir and backends ``settings`` name. ``owns_process``:
    the app is all its process runs (``sifa serve``), so once started it settles the heap.

    ``app.state.stop_server``, if the server sets it, is called when the node cannot keep its
    sequencer alive (``app.state.sequencer_failed`` is then True): ``sifa serve`` exits non-zero."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sifa rotate-key refuses while this node serves with the key open_node loads now (serving.lock)
        with serving(settings.data_dir), open_node(settings) as node:
            app.state.services = node
            app.state.bodies = BodySlots(settings.max_uploads_per_principal, settings.max_connections)
            stop = StopFlag()  # set by this lifespan only; the signals are uvicorn's
            supervisor: Supervisor | None = None
            threads: list[threading.Thread] = []
            app.state.sequencer_failed = False
            started: Callable[[], float | None]
            if settings.sequencer == "process":

                def give_up() -> None:
                    app.state.sequencer_failed = True
                    stop_server = getattr(app.state, "stop_server", None)
                    if stop_server is not None:
                        stop_server()

                supervisor = sequencer_supervisor(settings, give_up).start()
                at = time.monotonic()  # the grace counts from the node's start: a crash loop is no start-up
                started = lambda: None if supervisor.failed else at  # noqa: E731
            else:  # the sequencer (and its witnessing) in this process, sharing its stores
                sequencer = threading.Thread(target=node.sealer.run, args=(stop, settings.seal_interval_seconds),
                                             name="sifa-sequencer", daemon=True)  # fmt: skip
                sequencer.start()
                threads.append(sequencer)
                threads += start_companions(node, stop)
                at = time.monotonic()
                started = lambda: at if sequencer.is_alive() else None  # noqa: E731
            app.state.health = lambda: health(node.tree, node.dossiers, started=started,
                                              seal_lag=settings.seal_lag_seconds,
                                              gave_up=lambda: supervisor is not None and supervisor.failed)  # fmt: skip
            if owns_process:
                settle_heap()
            try:
                yield
            finally:
                # Shutdown in order (uvicorn has stopped taking requests and answered those in flight, so
                # their group commits are recorded): the sequencer seals what is left in one last pass
                # and stops, within STOP_WAIT (then it is killed: a killed transaction is rolled back);
                # then the stores close (open_node's block ends).
                stop.set()
                if supervisor is not None:
                    supervisor.stop(STOP_WAIT)
                for t in threads:
                    t.join(timeout=STOP_WAIT)
                app.state.bodies.close()

    app = FastAPI(
        title="sifa court node",
        summary="司法 — a court's node of a judicial evidence chain",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    edge.install(app, errors.error_response)  # credentials before bodies, bounded bodies
    for module in (
        listing,
        records,
        forms,
        console,
        dossiers,
        certificate,
        service,
        execution,
        transfer,
        principals,
        verify,
        page,
        log,
        tiles,
    ):
        app.include_router(module.router, responses=errors.RESPONSES)
    app.include_router(witness.router, responses=errors.RESPONSES)  # add-checkpoint documents its own text answers

    @app.get(
        "/healthz",
        tags=["node"],
        openapi_extra={"x-roles": ["public"]},
        response_model=Health,
        responses={503: {"model": Health, "description": "degraded: nothing is sealed (the body says why)"}},
    )
    def healthz() -> JSONResponse:
        """Whether the node seals: 200 when it does, 503 (degraded) when its sequencer is dead or
        stopped at an event it cannot seal (docs/operations.md)."""
        found: Health = app.state.health()
        return JSONResponse(found.model_dump(), status_code=200 if found.status == "ok" else 503)

    return app
