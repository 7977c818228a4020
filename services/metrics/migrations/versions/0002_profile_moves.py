"""profile_moves: where a merged or erased profile's facts went, for facts that come later

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 14:50:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('profile_moves',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'profile_id')
    )
    op.create_index('ix_profile_moves_target', 'profile_moves', ['workspace_id', 'target'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_profile_moves_target', table_name='profile_moves')
    op.drop_table('profile_moves')
