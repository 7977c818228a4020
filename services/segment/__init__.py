"""Segment service: segment definitions and realtime membership (in progress: the rule language)."""
