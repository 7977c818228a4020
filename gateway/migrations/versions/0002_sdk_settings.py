"""sdk settings: identity secrets and allowed origins

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 15:58:27.579764
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sdk_settings',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('identity_secret', sa.Text(), nullable=True),
    sa.Column('identity_secret_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('previous_identity_secret', sa.Text(), nullable=True),
    sa.Column('previous_identity_secret_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('allowed_origins', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ),
    sa.PrimaryKeyConstraint('workspace_id')
    )


def downgrade() -> None:
    op.drop_table('sdk_settings')
