"""llmfleet registry: the system of record (SQLAlchemy 2.0 models, one module per aggregate, Alembic)."""
