"""Observability of the control plane: cost accounting adapters, registry-backed metrics, Prometheus targets
and the PromQL the dashboard and canary analysis share (`queries`, dependency-free)."""
