"""batches: answered_through_line, the input line up to which every request has a result, so a chunk reads
only what follows it (was: every recorded id and the whole input parsed, once per chunk)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("answered_through_line", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_batch_results_batch_line", "batch_results", ["batch_id", "line"])


def downgrade() -> None:
    op.drop_index("ix_batch_results_batch_line", table_name="batch_results")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("answered_through_line")
