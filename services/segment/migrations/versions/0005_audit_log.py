"""audit log (kit.audit): admin writes and reads of personal data by API keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 16:26:47.781258
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('profile_id', sa.Text(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_workspace_at', 'audit_log', ['workspace_id', 'at', 'id'], unique=False)
    op.create_index('ix_audit_log_workspace_profile', 'audit_log', ['workspace_id', 'profile_id', 'at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_workspace_profile', table_name='audit_log')
    op.drop_index('ix_audit_log_workspace_at', table_name='audit_log')
    op.drop_table('audit_log')
