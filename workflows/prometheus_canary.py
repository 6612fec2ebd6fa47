"""Canary arms from Prometheus: requests, 5xx answers, p95 TTFT and p95 TPOT per version over a window, from
the gateway series (queries in `workflows.promql`), read through the HTTP API (`/api/v1/query`).

Used by the rollout's analysis activity when `LLMFLEET_PROMETHEUS_URL` is set. A version with no series
comes back as an empty sample (no requests, no latency), which the pure analysis calls inconclusive: no
data is never a pass. The transport is injectable (httpx), so tests and the worker decide what it is.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from scheduler.canary import ArmSample
from workflows import promql


class PrometheusError(Exception):
    """Prometheus did not answer a query (unreachable, HTTP error, or a query error it reported)."""


class PrometheusArms:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._transport = transport

    async def arms(self, deployment: str, versions: list[str], seconds: float) -> dict[str, ArmSample]:
        """One sample per version over the last `seconds` (requests exclude the 5xx ones, as in
        `ArmSample`, whose error rate is errors / (requests + errors))."""
        async with httpx.AsyncClient(base_url=self._base, timeout=self._timeout, transport=self._transport) as http:
            total = await self._by_version(http, promql.requests_by_version(deployment, seconds))
            errors = await self._by_version(http, promql.errors_by_version(deployment, seconds))
            ttft = await self._by_version(http, promql.latency_p95_by_version("ttft", deployment, seconds))
            tpot = await self._by_version(http, promql.latency_p95_by_version("tpot", deployment, seconds))
        out: dict[str, ArmSample] = {}
        for version in versions:
            failed = errors.get(version, 0.0)
            answered = total.get(version, 0.0)
            out[version] = ArmSample(
                requests=max(0.0, answered - failed), errors=failed,
                ttft_p95_ms=ttft[version] * 1000 if version in ttft else None,
                tpot_p95_ms=tpot[version] * 1000 if version in tpot else None)
        return out

    @staticmethod
    async def _by_version(http: httpx.AsyncClient, query: str) -> dict[str, float]:
        """version -> value of an instant vector; NaN and infinite values (no observations) left out."""
        try:
            response = await http.get("/api/v1/query", params={"query": query})
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise PrometheusError(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"HTTP {response.status_code}: {body.get('error', response.text[:200])}")
        values: dict[str, float] = {}
        for item in body["data"]["result"]:
            version = item["metric"].get("version")
            value = float(item["value"][1])
            if version is not None and math.isfinite(value):
                values[version] = value
        return values
