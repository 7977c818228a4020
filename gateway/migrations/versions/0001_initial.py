"""workspaces and api keys

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 06:37:31.632549
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('workspaces',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('hash', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_api_keys_workspace', 'api_keys', ['workspace_id'], unique=False)
    op.create_index('ux_api_keys_hash', 'api_keys', ['hash'], unique=True)



def downgrade() -> None:

    op.drop_index('ux_api_keys_hash', table_name='api_keys')
    op.drop_index('ix_api_keys_workspace', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('workspaces')

