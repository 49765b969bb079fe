"""schemathesis against the node's OpenAPI schema: every operation fuzzed, no 5xx, no schema violation."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.nodes import Node

EXAMPLES = int(os.environ.get("SIFA_FUZZ_EXAMPLES", "25"))  # per operation: bounded for CI; raise for a longer run


@pytest.fixture(scope="module")
def api_schema(node: Node) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{node.base}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.serializer("application/x-tar")
def _tar(ctx: object, value: object) -> bytes:
    """A dossier package is raw bytes, like application/octet-stream (schemathesis knows only that)."""
    return value if isinstance(value, bytes) else str(value).encode()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_operation(case: schemathesis.Case, node: Node) -> None:
    # Valid-looking input may still be refused by the rules (an unknown dossier id is 404),
    # so "positive data is accepted" is not a property of this API; everything else is.
    case.call_and_validate(headers=node.as_("clerk"), excluded_checks=[positive_data_acceptance])
