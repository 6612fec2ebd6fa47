"""llmfleet: agents."""
