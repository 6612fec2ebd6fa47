"""Which gateway histogram bucket counts a request as within a deployment's SLO.

Prometheus 2.42 cannot compare a label with a sample value, so "requests with TTFT <= the SLO" is read from
one bucket: the control plane publishes `llmfleet_deployment_slo_le{deployment, slo, le}` = 1 for the largest
bucket bound not above the SLO, and the rules join the gateway's buckets on (deployment, le). Rounding down
is conservative: a request between that bound and the SLO counts as bad.

The bounds repeat the gateway's (agents/ may not be imported here); a unit test keeps them equal.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from prometheus_client.utils import floatToGoString

GATEWAY_TTFT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)
GATEWAY_TPOT_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


def slo_le(threshold_s: float, bounds: Sequence[float]) -> str | None:
    """The `le` label (as prometheus_client writes it) of the largest bound <= threshold, or None if the SLO
    is below every bound (then attainment cannot be read from this histogram)."""
    index = bisect_right(bounds, threshold_s * (1 + 1e-9))  # 0.1 s from 100 ms must hit the 0.1 bucket
    if index == 0:
        return None
    label: str = floatToGoString(bounds[index - 1])
    return label
