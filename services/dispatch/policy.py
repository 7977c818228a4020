"""Changes to the workspace's sending policy document. Pure."""

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: an object merges key by key (null removes a key), any
    other value replaces what was there."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
