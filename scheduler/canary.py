"""Canary analysis: is the new version at least as good as the baseline? Pure: samples in, verdict out.

Each arm is summarised by its p95 TTFT, p95 TPOT and error rate over the same window. The canary fails
when any metric is worse than the baseline by more than the allowed ratio (or breaks the SLO outright);
it passes only when every metric has enough data and none is worse. Missing or thin data is never a
pass: it is `inconclusive`, and the caller decides (the RolloutWorkflow pauses for a human).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class ArmSample:
    """One arm's window: requests finished, requests failed, and latency percentiles (None: not measured)."""

    requests: float
    errors: float
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        total = self.requests + self.errors
        return None if total <= 0 else self.errors / total


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    min_requests: float = 20.0  # per arm; below this the window says nothing
    max_latency_ratio: float = 1.2  # canary p95 may be at most 20 % above the baseline's
    # ...and a regression must also exceed an absolute margin: at tens of milliseconds the p95s of a few
    # dozen requests from two identical arms differ by more than 20 % (scheduling noise, not the version).
    min_ttft_delta_ms: float = 25.0
    min_tpot_delta_ms: float = 5.0
    max_error_rate_delta: float = 0.01  # absolute: one point of error rate more than the baseline
    slo_ttft_p95_ms: float | None = None  # a canary over the SLO fails whatever the baseline does
    slo_tpot_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class CanaryResult:
    verdict: Verdict
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _ratio_check(name: str, canary: float | None, baseline: float | None, limit: float, min_delta: float,
                 slo: float | None) -> tuple[str | None, str | None]:
    """Returns (failure, missing) descriptions for one latency metric."""
    if canary is None:
        return None, f"no canary {name}"
    if slo is not None and canary > slo:
        return f"canary {name} {canary:.0f} ms breaks the SLO {slo:.0f} ms", None
    if baseline is None or baseline <= 0:
        return None, f"no baseline {name}"
    if canary > baseline * limit and canary - baseline > min_delta:
        return f"canary {name} {canary:.0f} ms > {limit:.2f} x baseline {baseline:.0f} ms", None
    return None, None


def analyse(canary: ArmSample, baseline: ArmSample, policy: CanaryPolicy | None = None) -> CanaryResult:
    """Compare the canary with the baseline. A failure found on thin data still counts only if it is an
    error-rate or SLO breach we can trust; otherwise thin data is inconclusive."""
    p = policy or CanaryPolicy()
    failures: list[str] = []
    missing: list[str] = []
    if canary.requests + canary.errors < p.min_requests:
        missing.append(f"canary saw {canary.requests + canary.errors:.0f} requests (< {p.min_requests:.0f})")
    if baseline.requests + baseline.errors < p.min_requests:
        missing.append(f"baseline saw {baseline.requests + baseline.errors:.0f} requests (< {p.min_requests:.0f})")
    if missing:
        return CanaryResult(Verdict.INCONCLUSIVE, tuple(missing))
    for name, c, b, delta, slo in (
        ("p95 TTFT", canary.ttft_p95_ms, baseline.ttft_p95_ms, p.min_ttft_delta_ms, p.slo_ttft_p95_ms),
        ("p95 TPOT", canary.tpot_p95_ms, baseline.tpot_p95_ms, p.min_tpot_delta_ms, p.slo_tpot_p95_ms),
    ):
        failure, gap = _ratio_check(name, c, b, p.max_latency_ratio, delta, slo)
        if failure:
            failures.append(failure)
        if gap:
            missing.append(gap)
    c_err, b_err = canary.error_rate, baseline.error_rate
    if c_err is not None and b_err is not None and c_err > b_err + p.max_error_rate_delta:
        failures.append(f"canary error rate {c_err:.3f} > baseline {b_err:.3f} + {p.max_error_rate_delta:.3f}")
    if failures:
        return CanaryResult(Verdict.FAIL, tuple(failures))
    if missing:
        return CanaryResult(Verdict.INCONCLUSIVE, tuple(missing))
    return CanaryResult(Verdict.PASS, ("every metric within bounds",))


def analyse_against_slo(candidate: ArmSample, policy: CanaryPolicy) -> CanaryResult:
    """Blue-green: after the switch the old colour serves nothing, so the new one is judged by the SLO alone.
    Without an SLO or without enough data there is nothing to judge: inconclusive."""
    if candidate.requests + candidate.errors < policy.min_requests:
        return CanaryResult(Verdict.INCONCLUSIVE, (f"saw {candidate.requests + candidate.errors:.0f} requests "
                                                   f"(< {policy.min_requests:.0f})",))
    failures: list[str] = []
    missing: list[str] = []
    for name, value, slo in (("p95 TTFT", candidate.ttft_p95_ms, policy.slo_ttft_p95_ms),
                             ("p95 TPOT", candidate.tpot_p95_ms, policy.slo_tpot_p95_ms)):
        if value is None or slo is None:
            missing.append(f"no {name} or no SLO for it")
        elif value > slo:
            failures.append(f"{name} {value:.0f} ms breaks the SLO {slo:.0f} ms")
    rate = candidate.error_rate
    if rate is not None and rate > policy.max_error_rate_delta:
        failures.append(f"error rate {rate:.3f} > {policy.max_error_rate_delta:.3f}")
    if failures:
        return CanaryResult(Verdict.FAIL, tuple(failures))
    if missing:
        return CanaryResult(Verdict.INCONCLUSIVE, tuple(missing))
    return CanaryResult(Verdict.PASS, ("within the SLO",))
