"""timers: looked up by profile on every evaluation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:05:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_timers_profile', 'timers', ['workspace_id', 'profile_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_timers_profile', table_name='timers')
