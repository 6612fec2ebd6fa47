"""The regional OpenAI-compatible gateway: auth, routing by published shares, splits, retries, limits, metrics."""
