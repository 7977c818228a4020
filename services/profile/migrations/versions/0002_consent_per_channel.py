"""consent: advertising per channel (ads:<channel>), marketing removed

The old all-channel `advertising` consent becomes ads:<channel> for every channel (same
granted, time and source), unless the profile holds that channel's own record already;
`marketing`, which no rule ever read, is dropped (a send's consent evidence never cited it).
Every live profile holding consent is listed in consent_announcements: the service announces
its consent once (profile.consent_changed) at start, so segment consent conditions see it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 13:10:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

CHANNELS = ("email", "sms", "kakao", "push", "webpush", "inapp", "webhook")  # as identity.CHANNELS then


def upgrade() -> None:
    channels = ", ".join(f"'{c}'" for c in CHANNELS)
    op.execute(
        "UPDATE profiles SET consent = (consent - 'advertising' - 'marketing') || COALESCE(("
        "  SELECT jsonb_object_agg('ads:' || c, consent -> 'advertising') "
        f"  FROM unnest(ARRAY[{channels}]) AS c "
        "  WHERE consent ? 'advertising' AND NOT consent ? ('ads:' || c)), '{}'::jsonb) "
        "WHERE consent ? 'advertising' OR consent ? 'marketing'")
    op.create_table('consent_announcements',
                    sa.Column('profile_id', postgresql.UUID(as_uuid=True), nullable=False),
                    sa.Column('workspace_id', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('profile_id'))
    op.execute("INSERT INTO consent_announcements (profile_id, workspace_id) SELECT id, workspace_id "
               "FROM profiles WHERE consent <> '{}'::jsonb AND merged_into IS NULL")


def downgrade() -> None:
    op.drop_table('consent_announcements')  # the per-channel records stay: they are what the person agreed to
