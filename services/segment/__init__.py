"""Segment service: segment definitions and realtime membership. So far its pure domain:
the rule language (rules.py), evaluation with time-driven flips (evaluation.py) and the
per-profile facts kept from events (facts.py); storage, transport and API come next."""
