"""segments, profiles' facts, events, memberships, timers, rfm, outbox

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 09:42:18.715248
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_events_name', 'events', ['workspace_id', 'name'], unique=False)
    op.create_index('ix_events_profile_name', 'events', ['workspace_id', 'profile_id', 'name', 'at'], unique=False)
    op.create_table('memberships',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('segment_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'segment_id', 'profile_id')
    )
    op.create_index('ix_memberships_profile', 'memberships', ['workspace_id', 'profile_id'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('entries', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('processed_events',
    sa.Column('consumer_group', sa.Text(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'event_id')
    )
    op.create_table('profiles',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('traits', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('series', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('merged_into', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('workspace_id', 'profile_id')
    )
    op.create_table('rfm_settings',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('order_event', sa.Text(), nullable=False),
    sa.Column('revenue_property', sa.Text(), nullable=False),
    sa.Column('edges', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('edges_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('workspace_id')
    )
    op.create_table('segments',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('rules', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('backfill_state', sa.Text(), nullable=False),
    sa.Column('backfill_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('backfill_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('backfill_cursor', sa.Text(), server_default='', nullable=False),
    sa.Column('backfill_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('backfill_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_segments_backfill', 'segments', ['backfill_state'], unique=False, postgresql_where=sa.text("backfill_state = 'running'"))
    op.create_table('timers',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('segment_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'segment_id', 'profile_id')
    )
    op.create_index('ix_timers_due', 'timers', ['due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_timers_due', table_name='timers')
    op.drop_table('timers')
    op.drop_index('ix_segments_backfill', table_name='segments', postgresql_where=sa.text("backfill_state = 'running'"))
    op.drop_table('segments')
    op.drop_table('rfm_settings')
    op.drop_table('profiles')
    op.drop_table('processed_events')
    op.drop_table('outbox')
    op.drop_index('ix_memberships_profile', table_name='memberships')
    op.drop_table('memberships')
    op.drop_index('ix_events_profile_name', table_name='events')
    op.drop_index('ix_events_name', table_name='events')
    op.drop_table('events')
