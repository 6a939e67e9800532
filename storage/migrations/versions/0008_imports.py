"""plan_import: a CSV plan's dry run kept until /import confirm creates its posts, and the files already imported

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'planimport',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('imported_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('encoding', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('submit', sa.Boolean(), nullable=False),
        sa.Column('rows', sa.JSON(), nullable=False),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.Column('post_ids', sa.JSON(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('author_platform', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('author_user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('decided_at', storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('workspace_id', 'imported_hash', name='uq_planimport_file'),
    )
    with op.batch_alter_table('planimport', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_planimport_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_planimport_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_planimport_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('planimport', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_planimport_state'))
        batch_op.drop_index(batch_op.f('ix_planimport_content_hash'))
        batch_op.drop_index(batch_op.f('ix_planimport_workspace_id'))
    op.drop_table('planimport')
