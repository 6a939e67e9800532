"""workspace.readers: who reads in a Discord server — members with a Herald role, or every member (open)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:05:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('readers', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default='members'))


def downgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('readers')
