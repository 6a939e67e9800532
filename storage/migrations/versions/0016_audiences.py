"""Audiences: who a campaign is tailored to (audience, audienceaccount), each delivery's audience and own due time
(delivery.audience_id, delivery.due_at, post.due_local), short links per audience (shortlink.audience_id), the
UTM parameter that names the audience (workspace.utm_audience), calendars per audience (calendarlink.audience_id)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 18:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.models


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audience',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('notes', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('removed_at', storage.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id', 'name', name='uq_audience_name')
    )
    with op.batch_alter_table('audience', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audience_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('audienceaccount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audience_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['audience_id'], ['audience.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('audience_id', 'account_id', name='uq_audience_account')
    )
    with op.batch_alter_table('audienceaccount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audienceaccount_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audienceaccount_audience_id'), ['audience_id'], unique=False)

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('due_at', storage.models.UTCDateTime(), nullable=True))
        batch_op.drop_constraint('uq_delivery_target', type_='unique')
        batch_op.create_foreign_key('fk_delivery_audience_id_audience', 'audience', ['audience_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_delivery_audience_id'), ['audience_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_due_at'), ['due_at'], unique=False)
    op.create_index('uq_delivery_target', 'delivery',
                    ['post_id', 'account_id', sa.text('coalesce(audience_id, 0)')], unique=True)

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_local', sqlmodel.sql.sqltypes.AutoString(), nullable=True))

    with op.batch_alter_table('calendarlink', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience_id', sa.Integer(), nullable=True))

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.add_column(sa.Column('utm_audience', sqlmodel.sql.sqltypes.AutoString(), server_default='utm_term',
                                      nullable=False))

    with op.batch_alter_table('shortlink', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience_id', sa.Integer(), nullable=True))
        batch_op.drop_constraint('uq_shortlink_target', type_='unique')
    op.create_index('uq_shortlink_target', 'shortlink',
                    ['post_id', 'account_id', sa.text('coalesce(audience_id, 0)'), 'target'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_shortlink_target', table_name='shortlink')
    with op.batch_alter_table('shortlink', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_shortlink_target', ['post_id', 'account_id', 'target'])
        batch_op.drop_column('audience_id')

    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_column('utm_audience')

    with op.batch_alter_table('calendarlink', schema=None) as batch_op:
        batch_op.drop_column('audience_id')

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('due_local')

    op.drop_index('uq_delivery_target', table_name='delivery')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_due_at'))
        batch_op.drop_index(batch_op.f('ix_delivery_audience_id'))
        batch_op.drop_constraint('fk_delivery_audience_id_audience', type_='foreignkey')
        batch_op.create_unique_constraint('uq_delivery_target', ['post_id', 'account_id'])
        batch_op.drop_column('due_at')
        batch_op.drop_column('audience_id')

    with op.batch_alter_table('audienceaccount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audienceaccount_audience_id'))
        batch_op.drop_index(batch_op.f('ix_audienceaccount_account_id'))
    op.drop_table('audienceaccount')
    with op.batch_alter_table('audience', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audience_workspace_id'))
    op.drop_table('audience')
