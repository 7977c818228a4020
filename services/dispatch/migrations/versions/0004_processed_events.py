"""processed_events: the erasure consumer's marks on nudge.events.v1

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


def downgrade() -> None:
    op.drop_table('processed_events')
