"""Journey service: versioned customer journeys run on durable timers. So far its pure
domain: the journey definition and its graph checks (definition.py); execution, the
simulator, storage and API come next."""
