"""llmfleet: workflows."""
