"""erased_profiles: people erased (profile.deleted), so a late event or segment change never
starts a run for them again

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erased_profiles',
                    sa.Column('workspace_id', sa.Text(), nullable=False),
                    sa.Column('profile_id', sa.Text(), nullable=False),
                    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('workspace_id', 'profile_id'))


def downgrade() -> None:
    op.drop_table('erased_profiles')
