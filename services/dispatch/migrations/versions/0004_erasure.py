"""erasure: the consumer's marks on nudge.events.v1, the people erased, and the indexes
that find a person's engagement and in-app rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 14:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('processed_events',
    sa.Column('consumer_group', sa.Text(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'event_id')
    )
    op.create_table('forgotten_profiles',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'profile_id')
    )
    op.create_index('ix_engagements_profile', 'engagements', ['workspace_id', 'profile_id'], unique=False)
    op.create_index('ix_inapp_profile', 'inapp_messages', ['workspace_id', 'profile_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inapp_profile', table_name='inapp_messages')
    op.drop_index('ix_engagements_profile', table_name='engagements')
    op.drop_table('forgotten_profiles')
    op.drop_table('processed_events')
