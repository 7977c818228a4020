"""Dispatch service: channels, templates, consent, quiet hours and fatigue, idempotent sends."""
