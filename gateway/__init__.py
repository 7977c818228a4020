"""The public HTTP surface of Nudge: auth, validation, limits, error shape, OpenAPI."""
