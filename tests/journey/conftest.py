"""The journey tests' webhook receiver is the dispatch tests' one: a local endpoint that
records every message a journey sends."""

from tests.dispatch.test_send_pipeline import receiver  # noqa: F401 (a fixture, shared)
