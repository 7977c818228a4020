"""Calls as the profile service's use cases take them (a tracking API call, parsed)."""

import secrets
from datetime import datetime, timezone

from services.profile.calls import Call

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def call(kind: str, at: datetime = T0, **fields) -> Call:
    """A call of `kind` received and sent at `at`; a fresh message id unless given."""
    return Call(type=kind, message_id=fields.pop("message_id", secrets.token_hex(8)), received_at=at,
                original_timestamp=at, **fields)
