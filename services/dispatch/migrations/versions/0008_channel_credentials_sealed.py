"""channel credentials sealed: the data keys of kit.crypto, and each channel config sealed
beside its masked form (rows written before keep their config in the clear until the next write)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 16:26:17.901999
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
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
    op.add_column('channel_configs', sa.Column('sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('channel_configs', 'sealed')
    op.drop_table('data_keys')
