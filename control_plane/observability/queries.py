"""Every PromQL query the dashboard and the canary analysis use, in one place (see docs/observability.md).

Dependency-free on purpose (plain strings and format functions): the dashboard imports it from HTTP-only
code. A test against a real Prometheus scraping a running stack checks that each query in `catalog()`
returns data. Registry-backed series are deduplicated with `max without (instance, job)` first, so several
API processes scraped at once do not multiply the numbers.
"""

from __future__ import annotations

import re

GROUPS = ("deployment", "team", "region", "accelerator", "market")
_WINDOW = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d|w|y)$")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _window(window: str) -> str:
    if not _WINDOW.match(window):
        raise ValueError(f"not a PromQL range: {window!r} (use e.g. 30s, 5m, 1h)")
    return window


def _group(group: str) -> str:
    if group not in GROUPS:
        raise ValueError(f"cannot group by {group!r}; choose one of {', '.join(GROUPS)}")
    return group


def _selector(extra: str | None = None, **labels: str | None) -> str:
    """`{k="v",...}` from equality matchers (None values left out) plus one raw matcher such as a regex."""
    parts = [f"{k}={quote(v)}" for k, v in labels.items() if v is not None] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _dedup(series: str) -> str:
    return f"max without (instance, job) ({series})"


# ---- cost --------------------------------------------------------------------------------------------


def cost_total() -> str:
    """Fleet $/h now."""
    return f"sum({_dedup('llmfleet_cost_usd_per_hour')})"


def cost_by(group: str) -> str:
    """$/h by deployment, team, region, accelerator or market."""
    g = _group(group)
    return f"sum by ({g}) ({_dedup('llmfleet_cost_usd_per_hour')})"


def replicas_by(group: str) -> str:
    g = _group(group)
    return f"sum by ({g}) ({_dedup('llmfleet_replicas')})"


def gpus_by(group: str) -> str:
    g = _group(group)
    return f"sum by ({g}) ({_dedup('llmfleet_gpus')})"


def deployment_cost(deployment: str) -> str:
    return f"sum({_dedup('llmfleet_cost_usd_per_hour' + _selector(deployment=deployment))})"


def deployment_budget(deployment: str) -> str:
    return _dedup("llmfleet_deployment_budget_usd_per_hour" + _selector(deployment=deployment))


def tokens_per_second(deployment: str | None = None, window: str = "5m") -> str:
    """Prompt + completion tokens/s through the gateways, by deployment."""
    w = _window(window)
    return f"sum by (deployment) (rate(llmfleet_gateway_tokens_total{_selector(deployment=deployment)}[{w}]))"


def usd_per_million_tokens(deployment: str | None = None, window: str = "5m") -> str:
    """$ per 1M tokens served through the gateways (cost now / token rate over the window)."""
    cost = f"sum by (deployment) ({_dedup('llmfleet_cost_usd_per_hour' + _selector(deployment=deployment))})"
    return f"{cost} / ({tokens_per_second(deployment, window)} * 3600) * 1e6"


# ---- SLO ---------------------------------------------------------------------------------------------


def slo_threshold(slo: str, deployment: str | None = None) -> str:
    """The deployment's p95 SLO in seconds (slo: ttft or tpot): the line drawn over latency trends."""
    if slo not in ("ttft", "tpot"):
        raise ValueError("slo must be ttft or tpot")
    return _dedup(f"llmfleet_deployment_slo_{slo}_seconds" + _selector(deployment=deployment))


def good_requests_rate(slo: str, deployment: str | None = None, window: str = "5m") -> str:
    """Requests/s within the SLO: the gateway bucket the control plane marks (llmfleet_deployment_slo_le)."""
    if slo not in ("ttft", "tpot"):
        raise ValueError("slo must be ttft or tpot")
    w = _window(window)
    marker = _dedup(f"llmfleet_deployment_slo_le{_selector(slo=slo, deployment=deployment)}")
    buckets = f"llmfleet_gateway_{slo}_seconds_bucket{_selector(deployment=deployment)}"
    return f"sum by (deployment) (rate({buckets}[{w}]) * on (deployment, le) group_left () {marker})"


def slo_attainment(slo: str, deployment: str | None = None, window: str = "5m") -> str:
    """Fraction of requests within the SLO over the window, by deployment (compare with 0.95)."""
    w = _window(window)
    total = f"sum by (deployment) (rate(llmfleet_gateway_{slo}_seconds_count{_selector(deployment=deployment)}[{w}]))"
    return f"{good_requests_rate(slo, deployment, w)} / {total}"


def latency_p95(slo: str, deployment: str | None = None, by: str = "deployment", window: str = "5m") -> str:
    """p95 TTFT/TPOT/e2e seen by the gateways, by deployment, arm, version or client_region."""
    if slo not in ("ttft", "tpot", "e2e"):
        raise ValueError("slo must be ttft, tpot or e2e")
    if by not in ("deployment", "arm", "version", "client_region"):
        raise ValueError("by must be deployment, arm, version or client_region")
    w = _window(window)
    keys = f"{by}, le" if deployment is not None or by == "deployment" else f"deployment, {by}, le"
    series = f"llmfleet_gateway_{slo}_seconds_bucket{_selector(deployment=deployment)}"
    return f"histogram_quantile(0.95, sum by ({keys}) (rate({series}[{w}])))"


def request_rate(deployment: str | None = None, by: str = "deployment", window: str = "5m") -> str:
    """Requests/s through the gateways, by deployment, client_region, arm, version or status."""
    if by not in ("deployment", "client_region", "arm", "version", "status"):
        raise ValueError("by must be deployment, client_region, arm, version or status")
    w = _window(window)
    return f"sum by ({by}) (rate(llmfleet_gateway_requests_total{_selector(deployment=deployment)}[{w}]))"


def error_ratio(deployment: str | None = None, by: str = "deployment", window: str = "5m") -> str:
    """Share of gateway answers that were 5xx, by deployment, arm or version."""
    if by not in ("deployment", "arm", "version"):
        raise ValueError("by must be deployment, arm or version")
    w = _window(window)
    all_ = _selector(deployment=deployment)
    errors = _selector(deployment=deployment, extra='status=~"5.."')
    # "or 0 * ..." keeps arms that have traffic but no error in the answer, as 0, instead of dropping them.
    return (f"(sum by ({by}) (rate(llmfleet_gateway_requests_total{errors}[{w}])) or "
            f"0 * sum by ({by}) (rate(llmfleet_gateway_requests_total{all_}[{w}]))) / "
            f"sum by ({by}) (rate(llmfleet_gateway_requests_total{all_}[{w}]))")


# ---- replicas (vLLM names) and the canary analysis -------------------------------------------------------


def replica_ttft_p95(deployment: str | None = None, by: str = "version", window: str = "5m") -> str:
    """p95 TTFT measured by the replicas themselves (vLLM histogram), by version, arm or replica."""
    if by not in ("version", "arm", "replica", "deployment"):
        raise ValueError("by must be version, arm, replica or deployment")
    w = _window(window)
    series = f"vllm:time_to_first_token_seconds_bucket{_selector(deployment=deployment)}"
    return f"histogram_quantile(0.95, sum by ({by}, le) (rate({series}[{w}])))"


def replica_generation_tokens_per_second(deployment: str | None = None, window: str = "5m") -> str:
    w = _window(window)
    return f"sum by (deployment) (rate(vllm:generation_tokens_total{_selector(deployment=deployment)}[{w}]))"


def kv_cache_usage(deployment: str | None = None) -> str:
    return f"avg by (deployment) (vllm:kv_cache_usage_perc{_selector(deployment=deployment)})"


def queue_length(deployment: str | None = None) -> str:
    return f"sum by (deployment) (vllm:num_requests_waiting{_selector(deployment=deployment)})"


# ---- fleet health --------------------------------------------------------------------------------------


def heartbeat_age() -> str:
    return f"max by (cluster, region) ({_dedup('llmfleet_cluster_heartbeat_age_seconds')})"


def plan_cost(deployment: str | None = None) -> str:
    return _dedup("llmfleet_plan_cost_usd_per_hour" + _selector(deployment=deployment))


def targets_up() -> str:
    """Scrape health of every target, by job and component."""
    return "sum by (job, component) (up)"


def firing_alerts() -> str:
    """Alerts firing now (may be empty; the dashboard can also read /api/v1/alerts)."""
    return 'ALERTS{alertstate="firing"}'


def catalog(deployment: str, window: str = "1m") -> dict[str, str]:
    """Named queries that must return data on a running stack with traffic (checked against Prometheus)."""
    named = {
        "cost_total": cost_total(),
        **{f"cost_by_{g}": cost_by(g) for g in GROUPS},
        **{f"replicas_by_{g}": replicas_by(g) for g in ("region", "accelerator", "market")},
        "gpus_by_accelerator": gpus_by("accelerator"),
        "deployment_cost": deployment_cost(deployment),
        "deployment_budget": deployment_budget(deployment),
        "tokens_per_second": tokens_per_second(deployment, window),
        "usd_per_million_tokens": usd_per_million_tokens(deployment, window),
        "slo_ttft": slo_threshold("ttft", deployment),
        "slo_tpot": slo_threshold("tpot", deployment),
        "ttft_attainment": slo_attainment("ttft", deployment, window),
        "tpot_attainment": slo_attainment("tpot", deployment, window),
        "ttft_p95_by_arm": latency_p95("ttft", deployment, "arm", window),
        "tpot_p95_by_version": latency_p95("tpot", deployment, "version", window),
        "e2e_p95": latency_p95("e2e", deployment, "deployment", window),
        "traffic_by_client_region": request_rate(deployment, "client_region", window),
        "error_ratio_by_arm": error_ratio(deployment, "arm", window),
        "replica_ttft_p95_by_version": replica_ttft_p95(deployment, "version", window),
        "replica_generation_tokens_per_second": replica_generation_tokens_per_second(deployment, window),
        "kv_cache_usage": kv_cache_usage(deployment),
        "queue_length": queue_length(deployment),
        "heartbeat_age": heartbeat_age(),
        "targets_up": targets_up(),
    }
    return named
