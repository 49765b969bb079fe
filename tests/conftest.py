"""Shared fixtures: real backends the tests start themselves."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dossier_fixtures import Stack, make_stack
from tests.servers import MotoServer, PostgresCluster, pg_bindir

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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
