"""llmfleet: control_plane."""
