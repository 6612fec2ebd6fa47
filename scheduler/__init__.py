"""llmfleet: scheduler."""
