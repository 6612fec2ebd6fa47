"""llmfleet: dashboard."""
