"""W3C trace context for tests that follow one request across the services."""

import secrets


def new_traceparent() -> tuple[str, str]:
    """A fresh trace id and the `traceparent` header that starts that trace."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"
