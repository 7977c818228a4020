"""profiles: trait times, erasure tombstones, index of merged ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:20:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('profiles', sa.Column('trait_times', postgresql.JSONB(astext_type=sa.Text()),
                                        server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.add_column('profiles', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_profiles_merged_into', 'profiles', ['workspace_id', 'merged_into'], unique=False,
                    postgresql_where=sa.text('merged_into IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_profiles_merged_into', table_name='profiles',
                  postgresql_where=sa.text('merged_into IS NOT NULL'))
    op.drop_column('profiles', 'deleted_at')
    op.drop_column('profiles', 'trait_times')
