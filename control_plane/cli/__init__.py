"""The `llmfleet` command line."""
