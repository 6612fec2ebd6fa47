"""Fuzz every operation from the OpenAPI schema: no generated input may cause a 5xx."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import populate

EXAMPLES_PER_OPERATION = 40


def test_no_server_errors(app: FastAPI, client: TestClient, make_key: KeyMaker) -> None:
    admin = bearer(make_key("platform", Scope.ADMIN))
    populate(client, admin, admin)  # real objects exist, so some generated ids and names hit them
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19
    tried: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def fuzz(case: schemathesis.Case) -> None:
            headers = {} if case.headers and "Authorization" in case.headers else dict(admin)
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        fuzz()
        tried.append(operation.label)
    assert len(tried) == len(operations)
