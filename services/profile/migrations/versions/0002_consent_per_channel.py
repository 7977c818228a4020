"""consent: advertising per channel (ads:<channel>), marketing removed

The old all-channel `advertising` consent becomes ads:<channel> for every channel (same
granted, time and source), unless the profile holds that channel's own record already;
`marketing`, which no rule ever read, is dropped (a send's consent evidence never cited it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 13:10:00
"""
from alembic import op

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


def downgrade() -> None:
    pass  # the per-channel records stay: they are what the person agreed to
