"""The PromQL the dashboard runs, in the forms docs/observability.md documents. Plain strings and format
functions only (no imports of ours), so the same text can be checked against a real Prometheus.

Registry-backed series come from every API instance: `max without (instance, job)` first."""

from __future__ import annotations

COST_GROUPS = ("deployment", "team", "region", "accelerator", "market")


def _label(value: str) -> str:
    """A PromQL string literal's body: backslashes and quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _by(group: str) -> str:
    if group not in COST_GROUPS:
        raise ValueError(f"group must be one of {', '.join(COST_GROUPS)}")
    return group


FLEET_COST = "sum(max without (instance, job) (llmfleet_cost_usd_per_hour))"


def cost_by(group: str) -> str:
    return f"sum by ({_by(group)}) (max without (instance, job) (llmfleet_cost_usd_per_hour))"


def replicas_by(group: str) -> str:
    return f"sum by ({_by(group)}) (max without (instance, job) (llmfleet_replicas))"


def good_requests(slo: str, window: str) -> str:
    """Per deployment, requests/s answered within the `slo` (`ttft` or `tpot`) bucket bound."""
    if slo not in ("ttft", "tpot"):
        raise ValueError("slo must be ttft or tpot")
    return (f"sum by (deployment) (rate(llmfleet_gateway_{slo}_seconds_bucket[{window}]) "
            f"* on (deployment, le) group_left max without (instance, job, team) "
            f'(llmfleet_deployment_slo_le{{slo="{slo}"}}))')


def all_requests(slo: str, window: str) -> str:
    if slo not in ("ttft", "tpot"):
        raise ValueError("slo must be ttft or tpot")
    return f"sum by (deployment) (rate(llmfleet_gateway_{slo}_seconds_count[{window}]))"


def attainment(slo: str, window: str) -> str:
    """Per deployment, the fraction of requests within the SLO (docs/observability.md)."""
    return f"{good_requests(slo, window)} / {all_requests(slo, window)}"


def fleet_attainment(slo: str, window: str) -> str:
    """The fraction of all gateway requests within their deployment's SLO. A deployment with no SLO bucket
    (its SLO is below the smallest bucket) has no good requests here: conservative."""
    return f"sum({good_requests(slo, window)}) / sum({all_requests(slo, window)})"


def p95_by(metric: str, deployment: str, by: str, window: str) -> str:
    """p95 of a gateway histogram (`ttft` or `tpot`) of one deployment, split by a label (`arm`, `version`, …)."""
    if metric not in ("ttft", "tpot"):
        raise ValueError("metric must be ttft or tpot")
    return (f"histogram_quantile(0.95, sum by ({by}, le) "
            f'(rate(llmfleet_gateway_{metric}_seconds_bucket{{deployment="{_label(deployment)}"}}[{window}])))')


def p95(metric: str, deployment: str, window: str) -> str:
    if metric not in ("ttft", "tpot"):
        raise ValueError("metric must be ttft or tpot")
    return (f"histogram_quantile(0.95, sum by (le) "
            f'(rate(llmfleet_gateway_{metric}_seconds_bucket{{deployment="{_label(deployment)}"}}[{window}])))')


def slo_line(metric: str, deployment: str) -> str:
    if metric not in ("ttft", "tpot"):
        raise ValueError("metric must be ttft or tpot")
    return f'max without (instance, job) (llmfleet_deployment_slo_{metric}_seconds{{deployment="{_label(deployment)}"}})'


def requests_by(deployment: str, by: str, window: str) -> str:
    return f'sum by ({by}) (rate(llmfleet_gateway_requests_total{{deployment="{_label(deployment)}"}}[{window}]))'


def errors_by(deployment: str, by: str, window: str) -> str:
    """5xx answers per second, split by `by`."""
    return (f"sum by ({by}) "
            f'(rate(llmfleet_gateway_requests_total{{deployment="{_label(deployment)}",status=~"5.."}}[{window}]))')


def error_ratio_by(deployment: str, by: str, window: str) -> str:
    """The share of 5xx answers, split by `by`, in one query (both sides at the same instant)."""
    return f"{errors_by(deployment, by, window)} / {requests_by(deployment, by, window)}"


def tokens_by(deployment: str, by: str, window: str) -> str:
    return f'sum by ({by}) (rate(llmfleet_gateway_tokens_total{{deployment="{_label(deployment)}"}}[{window}]))'


def deployment_cost(deployment: str) -> str:
    return (f"sum(max without (instance, job) "
            f'(llmfleet_cost_usd_per_hour{{deployment="{_label(deployment)}"}}))')
