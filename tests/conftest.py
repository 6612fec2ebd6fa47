"""Shared fixtures: a fresh database per test on SQLite and on the real PostgreSQL, the API app, keys."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from control_plane.app import create_app
from control_plane.settings import Settings
from registry.api_keys import Scope, issue_key
from registry.db import make_engine, session_factory, transaction, upgrade_to_head
from tests.support.real_parts import require_or_skip

POSTGRES_ADMIN_URL = os.environ.get("LLMFLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_engine() -> Engine:
    return make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated template database, made once per test session; each test clones it."""
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        require_or_skip(False, f"PostgreSQL at {POSTGRES_ADMIN_URL}")
    name = f"llmfleet_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrated = make_engine(url, poolclass=sa.pool.NullPool)
    upgrade_to_head(migrated)
    migrated.dispose()
    yield name
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    engine = _admin_engine()
    name = f"llmfleet_test_{secrets.token_hex(5)}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, state_dir=tmp_path / "state", mutation_rate_limit_per_minute=10_000)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


KeyMaker = Callable[..., str]


@pytest.fixture
def make_key(engine: Engine) -> KeyMaker:
    def make(team: str = "search", *scopes: Scope) -> str:
        with transaction(session_factory(engine)) as session:
            return issue_key(session, team=team, scopes=list(scopes) or [Scope.DEPLOY], name="test",
                             actor="test").plaintext

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
