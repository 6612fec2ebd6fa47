"""Offline evaluation: datasets of (prompt, reference) records, metrics that score an answer against its
reference, and a runner that sends the prompts through the gateway. Scoring is pure; only the runner talks
to the network."""
