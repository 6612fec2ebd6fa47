"""The per-cluster agent: pulls the cluster's desired replicas from the control plane (over HTTP only),
reconciles them through a replica backend, scrapes each replica's /metrics into short windows, posts
heartbeats, and serves its own /metrics.

Run it with `python -m agents.agent --cluster C --api-url U --backend sim` (key in LLMFLEET_AGENT_API_KEY)
or `llmfleet agent ...`.
"""

AGENT_VERSION = "0.1.0"
