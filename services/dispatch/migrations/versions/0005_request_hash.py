"""deliveries: a hash of the send as asked, so a key reused for another send is refused

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 13:10:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for sends recorded before: those keys are answered without the check.
    op.add_column('deliveries', sa.Column('request_hash', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('deliveries', 'request_hash')
