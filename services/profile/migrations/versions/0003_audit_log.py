"""audit log in kit's shape (kit.audit): a target per row, read newest first by time

Every service now keeps the same audit log; a profile row's target is its profile.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 16:26:21.514781
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('target', sa.Text(), nullable=True))
    op.execute("UPDATE audit_log SET target = profile_id WHERE profile_id IS NOT NULL")
    op.drop_index(op.f('ix_audit_workspace'), table_name='audit_log')
    op.create_index('ix_audit_log_workspace_at', 'audit_log', ['workspace_id', 'at', 'id'], unique=False)
    op.create_index('ix_audit_log_workspace_profile', 'audit_log', ['workspace_id', 'profile_id', 'at', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_workspace_profile', table_name='audit_log')
    op.drop_index('ix_audit_log_workspace_at', table_name='audit_log')
    op.create_index(op.f('ix_audit_workspace'), 'audit_log', ['workspace_id', 'id'], unique=False)
    op.drop_column('audit_log', 'target')
