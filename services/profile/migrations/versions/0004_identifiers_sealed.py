"""identifiers sealed: the data keys of kit.crypto, and beside each email, phone and device-token
identity (whose `value` becomes its blind index) the value sealed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 16:31:29.751740
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('data_keys',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.Column('master_key_id', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.add_column('identities', sa.Column('sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('identities', 'sealed')
    op.drop_table('data_keys')
