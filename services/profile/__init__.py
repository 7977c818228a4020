"""Profile service: profiles, the identity graph, the event log, consent, GDPR."""
