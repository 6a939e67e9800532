"""how far posts spread: amplifiers (who shared or quoted a post), share readings, the big-account alert and
praise words settings

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spread_alert_followers', sa.Integer(), nullable=False, server_default='10000'))
        batch_op.add_column(sa.Column('praise_words', sa.Text(), nullable=False, server_default=''))
    op.create_table(
        'amplifier',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('post_id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('network', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('who', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('handle', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('followers', sa.Integer(), nullable=True),
        sa.Column('shared_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False, server_default=''),
        sa.Column('url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('engagement', sa.Integer(), nullable=True),
        sa.Column('via', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('first_seen_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('updated_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('alerted_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('inbox_item_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id']),
        sa.ForeignKeyConstraint(['post_id'], ['post.id']),
        sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id']),
        sa.ForeignKeyConstraint(['inbox_item_id'], ['inboxitem.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('post_id', 'network', 'who', name='uq_amplifier_post_who'),
    )
    op.create_index('ix_amplifier_post_id', 'amplifier', ['post_id'], unique=False)
    op.create_index('ix_amplifier_delivery_id', 'amplifier', ['delivery_id'], unique=False)
    op.create_index('ix_amplifier_workspace_seen', 'amplifier', ['workspace_id', 'first_seen_at'], unique=False)
    op.create_index('ix_amplifier_updated_at', 'amplifier', ['updated_at'], unique=False)
    op.create_table(
        'sharereading',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=True),
        sa.Column('taken_at', storage.models.UTCDateTime(), nullable=True),
        sa.Column('total', sa.Integer(), nullable=True),
        sa.Column('found', sa.Integer(), nullable=False),
        sa.Column('wait_until', storage.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sharereading_account_id', 'sharereading', ['account_id'], unique=False)
    op.create_index('ix_sharereading_delivery_id', 'sharereading', ['delivery_id'], unique=False)
    op.create_index('ix_sharereading_taken_at', 'sharereading', ['taken_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sharereading_taken_at', table_name='sharereading')
    op.drop_index('ix_sharereading_delivery_id', table_name='sharereading')
    op.drop_index('ix_sharereading_account_id', table_name='sharereading')
    op.drop_table('sharereading')
    op.drop_index('ix_amplifier_updated_at', table_name='amplifier')
    op.drop_index('ix_amplifier_workspace_seen', table_name='amplifier')
    op.drop_index('ix_amplifier_delivery_id', table_name='amplifier')
    op.drop_index('ix_amplifier_post_id', table_name='amplifier')
    op.drop_table('amplifier')
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('praise_words')
        batch_op.drop_column('spread_alert_followers')
