"""deliveries: the runner that owns a send

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:55:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('owner', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('deliveries', 'owner')
