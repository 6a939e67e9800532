"""recurring posts (series, occurrence, workspace.series_approval) and the evergreen queue (evergreenitem, evergreenrun)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:46:21.252265
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evergreenitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('cooldown_days', sa.Integer(), nullable=False),
    sa.Column('max_cycles', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('added_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('added_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('post_id', name='uq_evergreen_post')
    )
    with op.batch_alter_table('evergreenitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evergreenitem_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('template_post_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('start_local', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('approval', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('stopped_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['template_post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('template_post_id', name='uq_series_template')
    )
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_series_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_series_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('evergreenrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('slot_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('wording', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['evergreenitem.id'], ),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'slot_at', name='uq_evergreen_slot')
    )
    with op.batch_alter_table('evergreenrun', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evergreenrun_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evergreenrun_item_id'), ['item_id'], unique=False)

    op.create_table('occurrence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('occurs_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('skipped', sa.Boolean(), nullable=False),
    sa.Column('edited', sa.Boolean(), nullable=False),
    sa.Column('template_revision', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['series_id'], ['series.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('series_id', 'occurs_at', name='uq_occurrence_date')
    )
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_occurrence_post_id'), ['post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_occurrence_series_id'), ['series_id'], unique=False)

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_approval', sqlmodel.sql.sqltypes.AutoString(), server_default='once', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('series_approval')

    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_occurrence_series_id'))
        batch_op.drop_index(batch_op.f('ix_occurrence_post_id'))

    op.drop_table('occurrence')
    with op.batch_alter_table('evergreenrun', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evergreenrun_item_id'))
        batch_op.drop_index(batch_op.f('ix_evergreenrun_account_id'))

    op.drop_table('evergreenrun')
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_series_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_series_state'))

    op.drop_table('series')
    with op.batch_alter_table('evergreenitem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evergreenitem_workspace_id'))

    op.drop_table('evergreenitem')
