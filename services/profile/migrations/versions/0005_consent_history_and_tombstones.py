"""consent_history, erased_identifiers: every consent change kept for the GDPR export, and
blind-indexed tombstones of erased people's identifiers so replayed calls are dropped

Consent recorded before the history was kept enters it as one entry per purpose held (its
newest change, which is all that was kept), recorded at the migration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_history',
                    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
                    sa.Column('workspace_id', sa.Text(), nullable=False),
                    sa.Column('profile_id', postgresql.UUID(as_uuid=True), nullable=False),
                    sa.Column('purpose', sa.Text(), nullable=False),
                    sa.Column('granted', sa.Boolean(), nullable=False),
                    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('source', sa.Text(), nullable=False),
                    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('actor', sa.Text(), server_default='', nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_consent_history_profile', 'consent_history', ['workspace_id', 'profile_id', 'id'])
    op.create_table('erased_identifiers',
                    sa.Column('workspace_id', sa.Text(), nullable=False),
                    sa.Column('digest', sa.LargeBinary(), nullable=False),
                    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('workspace_id', 'digest'))
    op.execute(
        "INSERT INTO consent_history (workspace_id, profile_id, purpose, granted, at, source, recorded_at) "
        "SELECT p.workspace_id, p.id, c.key, (c.value ->> 'granted')::boolean, (c.value ->> 'at')::timestamptz, "
        "  COALESCE(c.value ->> 'source', ''), now() "
        "FROM profiles AS p CROSS JOIN LATERAL jsonb_each(p.consent) AS c "
        "WHERE p.merged_into IS NULL ORDER BY p.id, (c.value ->> 'at')")


def downgrade() -> None:
    op.drop_table('erased_identifiers')
    op.drop_index('ix_consent_history_profile', table_name='consent_history')
    op.drop_table('consent_history')
