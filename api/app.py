"""The FastAPI application: ``create_app(settings)`` builds services in its lifespan."""

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
from api.chain import Anchoring, chain_anchor
from api.deps import Services
from api.health import Health, health
from api.keys import serving
from api.lifecycle import STOP_WAIT, StopFlag, Supervisor
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
from api.peers import NonceStore, PeerGate, client_tls
from api.principals import Principals
from api.routes import dossiers, log, page, principals, tiles, transfer, verify, witness
from api.settings import Settings
from api.tsa import Stamping
from api.witnessing import Witnessing
from dossier.application import DossierApp
from dossier.courts import CourtRegistry
from dossier.sealer import Sealer
from ledger.log import MerkleLog
from ledger.witness import Witness
from ledger.witness_sqlite import SQLiteWitnessState


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
        data = settings.data_dir
        config = load_config(data)
        held = serving(data)  # sifa rotate-key refuses while this node serves with the key it loads now
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
            threads.append(threading.Thread(target=sealer.run, args=(stop, settings.seal_interval_seconds),
                                            name="sifa-sequencer", daemon=True))  # fmt: skip
            if asked is not None:
                witnessing = Witnessing(merkle, asked, tls=client_tls(settings.tls_ca))
                threads.append(threading.Thread(target=witnessing.run, args=(stop, settings.witness_interval_seconds),
                                                name="sifa-witnessing", daemon=True))  # fmt: skip
            if settings.chain_rpc_url:
                anchoring = Anchoring(merkle, chain_anchor(settings))
                threads.append(threading.Thread(target=anchoring.run, args=(stop, settings.chain_interval_seconds),
                                                name="sifa-chain", daemon=True))  # fmt: skip
            if settings.tsa_list():
                stamping = Stamping(merkle, settings.tsa_list(), tls=client_tls(settings.tls_ca))
                threads.append(threading.Thread(target=stamping.run, args=(stop, settings.tsa_interval_seconds),
                                                name="sifa-tsa", daemon=True))  # fmt: skip
            for t in threads:
                t.start()
            at = time.monotonic()
            started = lambda: at if threads[0].is_alive() else None  # noqa: E731
        app.state.health = lambda: health(store, app_, started=started, seal_lag=settings.seal_lag_seconds,
                                          gave_up=lambda: supervisor is not None and supervisor.failed)  # fmt: skip
        if owns_process:
            settle_heap()
        try:
            yield
        finally:
            # Shutdown in order (uvicorn has stopped taking requests and answered those in flight, so
            # their group commits are recorded): the sequencer seals what is left in one last pass
            # and stops, within STOP_WAIT (then it is killed: a killed transaction is rolled back);
            # then the stores close.
            stop.set()
            if supervisor is not None:
                supervisor.stop(STOP_WAIT)
            for t in threads:
                t.join(timeout=STOP_WAIT)
            people.close()
            nonces.close()
            if witness_state is not None:
                witness_state.close()
            app_.close()
            blobs.close()
            store.close()
            held.close()

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
