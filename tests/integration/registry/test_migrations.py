"""Alembic: `upgrade head` on an empty database matches the models exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from registry.db import alembic_config, make_engine, upgrade_to_head
from registry.schema import metadata


def test_upgrade_head_matches_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        assert context.get_current_revision() == head
        tables = set(sa.inspect(connection).get_table_names())
    assert set(metadata.tables) <= tables
    engine.dispose()


def test_upgrade_is_repeatable(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_to_head(engine)
    upgrade_to_head(engine)  # applied on every start: a second run must be a no-op
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
