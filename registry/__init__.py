"""llmfleet: registry."""
