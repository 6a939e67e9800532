"""Herald's own short links and their clicks (shortlink, click, clickkey), workspace.short_links, post.keep_links

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 14:40:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shortlink',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', storage.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('post_id', 'account_id', 'target', name='uq_shortlink_target')
    )
    with op.batch_alter_table('shortlink', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shortlink_workspace_id'), ['workspace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shortlink_post_id'), ['post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shortlink_account_id'), ['account_id'], unique=False)

    op.create_table('click',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('visitor', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fetcher', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('click', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_click_link_id'), ['link_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_click_at'), ['at'], unique=False)
        batch_op.create_index('ix_click_link_visitor_at', ['link_id', 'visitor', 'at'], unique=False)

    op.create_table('clickkey',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('short_links', sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keep_links', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('keep_links')
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('short_links')
    op.drop_table('clickkey')
    with op.batch_alter_table('click', schema=None) as batch_op:
        batch_op.drop_index('ix_click_link_visitor_at')
        batch_op.drop_index(batch_op.f('ix_click_at'))
        batch_op.drop_index(batch_op.f('ix_click_link_id'))
    op.drop_table('click')
    with op.batch_alter_table('shortlink', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shortlink_account_id'))
        batch_op.drop_index(batch_op.f('ix_shortlink_post_id'))
        batch_op.drop_index(batch_op.f('ix_shortlink_workspace_id'))
    op.drop_table('shortlink')
