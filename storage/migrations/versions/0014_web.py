"""The plan on the web: calendar links, outside reviewers' links, workspace.outside_approvals and review_days

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 15:10:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendarlink',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token')
    )
    with op.batch_alter_table('calendarlink', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendarlink_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('reviewlink',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('reviewer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('expires_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('used_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('nonce')
    )
    with op.batch_alter_table('reviewlink', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviewlink_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviewlink_post_id'), ['post_id'], unique=False)

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outside_approvals', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('review_days', sa.Integer(), server_default='7', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('review_days')
        batch_op.drop_column('outside_approvals')
    with op.batch_alter_table('reviewlink', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviewlink_post_id'))
        batch_op.drop_index(batch_op.f('ix_reviewlink_workspace_id'))
    op.drop_table('reviewlink')
    with op.batch_alter_table('calendarlink', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendarlink_workspace_id'))
    op.drop_table('calendarlink')
