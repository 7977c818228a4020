"""A person's time zone: the `timezone` trait when it names a zone, else the workspace
default (Asia/Seoul). Calendar rules (a day, quiet hours, birthdays) are in this zone."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEOUL = ZoneInfo("Asia/Seoul")


def zone_of(traits: dict, default=SEOUL):
    name = traits.get("timezone")
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default
