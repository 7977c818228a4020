"""templates, channel configs, policies, deliveries, in-app, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 10:06:44.243669
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_configs',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'channel')
    )
    op.create_table('deliveries',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('request', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=True),
    sa.Column('provider', sa.Text(), nullable=True),
    sa.Column('provider_message_id', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('rule', sa.Text(), server_default='', nullable=False),
    sa.Column('deferred_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_allowed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('attempts', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_deliveries_deferred', 'deliveries', ['deferred_until'], unique=False, postgresql_where=sa.text("status = 'deferred'"))
    op.create_index('ix_deliveries_profile', 'deliveries', ['workspace_id', 'profile_id', 'created_at'], unique=False)
    op.create_index('ix_deliveries_provider_id', 'deliveries', ['provider', 'provider_message_id'], unique=False)
    op.create_index('ux_deliveries_key', 'deliveries', ['workspace_id', 'idempotency_key'], unique=True)
    op.create_table('inapp_messages',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('delivery_id', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), server_default='', nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_inapp_unseen', 'inapp_messages', ['workspace_id', 'profile_id'], unique=False, postgresql_where=sa.text('NOT seen'))
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entries', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('policies',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('policy', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id')
    )
    op.create_table('templates',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('channels', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id', 'version')
    )


def downgrade() -> None:
    op.drop_table('templates')
    op.drop_table('policies')
    op.drop_table('outbox')
    op.drop_index('ix_inapp_unseen', table_name='inapp_messages', postgresql_where=sa.text('NOT seen'))
    op.drop_table('inapp_messages')
    op.drop_index('ux_deliveries_key', table_name='deliveries')
    op.drop_index('ix_deliveries_provider_id', table_name='deliveries')
    op.drop_index('ix_deliveries_profile', table_name='deliveries')
    op.drop_index('ix_deliveries_deferred', table_name='deliveries', postgresql_where=sa.text("status = 'deferred'"))
    op.drop_table('deliveries')
    op.drop_table('channel_configs')
