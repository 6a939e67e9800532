"""Visits and conversions from the site's analytics (analyticssource, posttraffic)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 15:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analyticssource',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('credentials', sa.LargeBinary(), nullable=True),
    sa.Column('connected_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('read_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('due_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id')
    )
    with op.batch_alter_table('analyticssource', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analyticssource_due_at'), ['due_at'], unique=False)

    op.create_table('posttraffic',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('conversions', sa.Integer(), nullable=True),
    sa.Column('read_at', storage.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id', 'post_id', 'account', name='uq_posttraffic_delivery')
    )
    with op.batch_alter_table('posttraffic', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posttraffic_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_posttraffic_post_id'), ['post_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posttraffic', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posttraffic_post_id'))
        batch_op.drop_index(batch_op.f('ix_posttraffic_workspace_id'))
    op.drop_table('posttraffic')
    with op.batch_alter_table('analyticssource', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analyticssource_due_at'))
    op.drop_table('analyticssource')
