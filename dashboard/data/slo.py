"""SLO attainment, from the two sources the dashboard has.

- Prometheus (the SLI): the fraction of gateway requests whose TTFT (and TPOT) fell within the SLO bucket,
  per docs/observability.md. A request is good only if both hold, so the headline is the smaller of the two
  fractions (an upper bound of the joint one).
- The API alone: the goodput share, the fraction of tokens served by replicas whose window p95 TTFT and TPOT
  met the SLO — recovered from `GET /v1/deployments/{name}/cost` as
  goodput_tokens_per_usd × usd_per_hour / 3600 / tokens_per_second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard import queries
from dashboard.prometheus import Prometheus, scalar, vector_by


@dataclass(frozen=True, slots=True)
class Goodput:
    tokens_per_second: float
    good_tokens_per_second: float

    @property
    def share(self) -> float | None:
        return self.good_tokens_per_second / self.tokens_per_second if self.tokens_per_second > 0 else None


def goodput_of(cost: dict[str, Any]) -> Goodput | None:
    """None when the API has no tokens (or no cost) to judge by."""
    tps = cost.get("tokens_per_second") or 0.0
    per_usd, usd_h = cost.get("goodput_tokens_per_usd"), cost.get("usd_per_hour") or 0.0
    if tps <= 0 or per_usd is None or usd_h <= 0:
        return None
    # The API rounds; never report more good tokens than tokens.
    return Goodput(tokens_per_second=tps, good_tokens_per_second=min(tps, per_usd * usd_h / 3600.0))


def fleet_goodput(items: list[Goodput | None]) -> float | None:
    known = [g for g in items if g is not None]
    total = sum(g.tokens_per_second for g in known)
    return sum(g.good_tokens_per_second for g in known) / total if total > 0 else None


@dataclass(frozen=True, slots=True)
class RequestAttainment:
    """Fractions of requests within the SLO over `window`, per deployment and for the whole fleet."""

    window: str
    ttft: dict[str, float]
    tpot: dict[str, float]
    fleet_ttft: float | None
    fleet_tpot: float | None

    def of(self, deployment: str) -> float | None:
        values = [v for v in (self.ttft.get(deployment), self.tpot.get(deployment)) if v is not None]
        return min(values) if values else None

    @property
    def fleet(self) -> float | None:
        values = [v for v in (self.fleet_ttft, self.fleet_tpot) if v is not None]
        return min(values) if values else None


def request_attainment(prom: Prometheus, window: str) -> RequestAttainment:
    """One query per ratio, so numerator and denominator are evaluated at the same instant."""
    fractions: dict[str, dict[str, float]] = {}
    fleet: dict[str, float | None] = {}
    for slo in ("ttft", "tpot"):
        fractions[slo] = {d: min(1.0, v) for d, v in
                          vector_by(prom.instant(queries.attainment(slo, window)), "deployment").items()}
        whole = scalar(prom.instant(queries.fleet_attainment(slo, window)))
        fleet[slo] = None if whole is None else min(1.0, whole)
    return RequestAttainment(window=window, ttft=fractions["ttft"], tpot=fractions["tpot"],
                             fleet_ttft=fleet["ttft"], fleet_tpot=fleet["tpot"])
