"""deliveries: the original URLs of their tracked links; engagements: click, open, unsubscribe
and in-app facts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:49:59
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engagements',
    sa.Column('workspace_id', sa.Text(), nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('delivery_id', sa.Text(), nullable=False),
    sa.Column('profile_id', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('category', sa.Text(), server_default='', nullable=False),
    sa.Column('machine', sa.Boolean(), nullable=False),
    sa.Column('user_agent', sa.Text(), server_default='', nullable=False),
    sa.Column('ip', sa.Text(), server_default='', nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('workspace_id', 'id')
    )
    op.create_index('ix_engagements_delivery', 'engagements', ['workspace_id', 'delivery_id', 'at'], unique=False)
    op.add_column('deliveries', sa.Column('links', postgresql.JSONB(astext_type=sa.Text()),
                                          server_default=sa.text("'[]'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column('deliveries', 'links')
    op.drop_index('ix_engagements_delivery', table_name='engagements')
    op.drop_table('engagements')
