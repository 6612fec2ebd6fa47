"""Alembic environment: runs against the engine handed over in config.attributes (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from registry.schema import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table rebuilds for ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
