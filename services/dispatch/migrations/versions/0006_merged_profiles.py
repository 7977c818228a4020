"""merged profiles: who was merged into whom, so a survivor's inbox includes the merged
person's messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 13:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('merged_profiles',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('merged_id', sa.Text(), nullable=False),
    sa.Column('survivor_id', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'merged_id')
    )
    op.create_index('ix_merged_profiles_survivor', 'merged_profiles', ['workspace_id', 'survivor_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_merged_profiles_survivor', table_name='merged_profiles')
    op.drop_table('merged_profiles')
