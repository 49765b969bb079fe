"""Shared fixtures: real backends the tests start themselves."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.sqlite import SQLiteTreeStore
from tests.dossier_fixtures import Stack, make_stack
from tests.servers import IN_CI, MotoServer, PostgresCluster, chromium, pg_bindir

__all__ = ["IN_CI"]  # read here by the modules that skip on a laptop and fail in CI
ORIGIN = "sifa.court/1101-0105"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster. Skipped on a laptop without PostgreSQL, never in CI."""
    if pg_bindir() is None:
        if IN_CI:
            pytest.fail("PostgreSQL binaries are missing in CI; .ci/run must install them")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


_db_counter = itertools.count()


@pytest.fixture
def pg_dsn(postgres: PostgresCluster) -> str:
    """A fresh, empty database on the session cluster."""
    return postgres.create_database(f"t{os.getpid()}_{next(_db_counter)}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server on 127.0.0.1, a separate process spoken to over real HTTP."""
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, driven by Playwright) for a module's page tests; skipped without it."""
    with chromium() as b:
        yield b


@pytest.fixture
def signer() -> Ed25519Signer:
    """A fresh log key of the court ``sifa.court/1101-0105``."""
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def merkle(tmp_path: Path) -> Iterator[MerkleLog]:
    """An empty log on a SQLite tree store in the test's folder."""
    store = SQLiteTreeStore(tmp_path / "tree.db")
    yield MerkleLog(store)
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A court's dossier stack (events, blobs, tree, sealer) on each event store."""
    spec = "sqlite"
    if request.param == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        name = f"d{abs(hash(tmp_path)) % 10**9}"
        cluster.create_database(name)
        spec = f"postgres:127.0.0.1:{cluster.port}:{name}"
    s = make_stack(spec, tmp_path)
    yield s
    s.close()


from tests.nodes import node  # noqa: E402, F401 - a module-scoped running node, for the API tests
