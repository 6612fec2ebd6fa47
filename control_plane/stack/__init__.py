"""The local stack (`llmfleet up` / `llmfleet down`): processes, their state file and demo data."""
