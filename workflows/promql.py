"""The PromQL canary analysis runs, copied from `control_plane/observability/queries.py` (workflows may not
import control_plane; docs/observability.md lists the series). Plain strings over the gateway's series
`llmfleet_gateway_requests_total` and the `llmfleet_gateway_{ttft,tpot}_seconds` histograms, labelled
deployment, version, arm, client_region, status. Each query answers one value per `version`."""

from __future__ import annotations

import math


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def window(seconds: float) -> str:
    """A PromQL range in whole seconds, at least 1 s."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a window must be a positive number of seconds, not {seconds!r}")
    return f"{max(1, math.ceil(seconds))}s"


def _selector(deployment: str, extra: str = "") -> str:
    return "{deployment=" + quote(deployment) + (f",{extra}" if extra else "") + "}"


def requests_by_version(deployment: str, seconds: float) -> str:
    """Answers (any status) per version over the window."""
    return (f"sum by (version) (increase(llmfleet_gateway_requests_total{_selector(deployment)}"
            f"[{window(seconds)}]))")


def errors_by_version(deployment: str, seconds: float) -> str:
    """5xx answers per version over the window."""
    errors = _selector(deployment, 'status=~"5.."')
    return f"sum by (version) (increase(llmfleet_gateway_requests_total{errors}[{window(seconds)}]))"


def latency_p95_by_version(metric: str, deployment: str, seconds: float) -> str:
    """p95 TTFT or TPOT (seconds) per version, as the gateways measured it."""
    if metric not in ("ttft", "tpot"):
        raise ValueError("metric must be ttft or tpot")
    series = f"llmfleet_gateway_{metric}_seconds_bucket{_selector(deployment)}"
    return f"histogram_quantile(0.95, sum by (version, le) (rate({series}[{window(seconds)}])))"
