"""profiles, identities, events, policies, audit, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 06:34:29.310416
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_workspace', 'audit_log', ['workspace_id', 'id'], unique=False)
    op.create_table('events',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.UUID(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('call', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_events_profile_time', 'events', ['workspace_id', 'profile_id', 'timestamp', 'id'], unique=False)
    op.create_index('ux_events_message_id', 'events', ['workspace_id', 'message_id'], unique=True)
    op.create_table('identities',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.UUID(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'type', 'value', 'profile_id')
    )
    op.create_index('ix_identities_profile', 'identities', ['profile_id'], unique=False)
    op.create_index('ux_identities_one_owner', 'identities', ['workspace_id', 'type', 'value'], unique=True, postgresql_where=sa.text("type IN ('user_id', 'anonymous_id')"))
    op.create_table('identity_policies',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('unique_identifiers', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entries', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('profiles',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('traits', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('trait_times', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('merged_into', sa.UUID(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_profiles_merged_into', 'profiles', ['workspace_id', 'merged_into'], unique=False)



def downgrade() -> None:

    op.drop_index('ix_profiles_merged_into', table_name='profiles')
    op.drop_table('profiles')
    op.drop_table('outbox')
    op.drop_table('identity_policies')
    op.drop_index('ux_identities_one_owner', table_name='identities', postgresql_where=sa.text("type IN ('user_id', 'anonymous_id')"))
    op.drop_index('ix_identities_profile', table_name='identities')
    op.drop_table('identities')
    op.drop_index('ux_events_message_id', table_name='events')
    op.drop_index('ix_events_profile_time', table_name='events')
    op.drop_table('events')
    op.drop_index('ix_audit_workspace', table_name='audit_log')
    op.drop_table('audit_log')

