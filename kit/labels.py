"""The name and description a marketer gives a segment or a journey: one set of limits."""

from kit.errors import InvalidArgument

NAME_MAX = 200
DESCRIPTION_MAX = 2000


def checked_name(name: str) -> str:
    if not name or not name.strip() or len(name) > NAME_MAX:
        raise InvalidArgument(f"name: expected 1 to {NAME_MAX} characters", field="name")
    return name.strip()


def checked_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise InvalidArgument(f"description: expected at most {DESCRIPTION_MAX} characters", field="description")
    return description
