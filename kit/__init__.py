"""The shared runtime every Nudge service and the gateway use."""
