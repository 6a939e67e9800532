"""crisis mode: the crisis table, and the workspace's crisis under way, statement template and alert factor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'crisis',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('started_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('started_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('resume_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('approvals_before', sa.Integer(), nullable=False),
        sa.Column('saved_approvals_needed', sa.Integer(), nullable=False),
        sa.Column('saved_alert_factor', sa.Float(), nullable=False),
        sa.Column('statement_post_id', sa.Integer(), nullable=True),
        sa.Column('ended_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('ended_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('told_end_at', storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['statement_post_id'], ['post.id']),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('crisis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_resume_at'), ['resume_at'], unique=False)
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crisis_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('crisis_template', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('crisis_alert_factor', sa.Float(), nullable=False, server_default='1.5'))


def downgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('crisis_alert_factor')
        batch_op.drop_column('crisis_template')
        batch_op.drop_column('crisis_id')
    with op.batch_alter_table('crisis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_resume_at'))
        batch_op.drop_index(batch_op.f('ix_crisis_workspace_id'))
    op.drop_table('crisis')
