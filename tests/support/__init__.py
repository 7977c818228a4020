"""What tests share: waiting for a condition (waiting), the API calls a test makes through the
gateway (api), channel and provider settings (channels), a local webhook receiver (receiver),
stream markers (streams), journey helpers (journeys). Test modules import from here or use
their conftest fixtures; no test module imports another (tests/test_layout.py)."""
