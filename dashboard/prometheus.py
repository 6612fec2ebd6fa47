"""Reading Prometheus: queries through prometheus-api-client, firing alerts from `GET /api/v1/alerts` (which
the client does not wrap) over httpx. Results come back as plain pandas frames keyed by one label."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry


class PrometheusError(RuntimeError):
    pass


class Prometheus:
    def __init__(self, url: str, *, timeout_s: float = 10.0, alerts_transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        # No retries: a page refresh asks again soon anyway, and a dead Prometheus should not stall it.
        self._client = PrometheusConnect(url=self.url, retry=Retry(total=0), timeout=math.ceil(timeout_s))
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, transport=alerts_transport)

    def close(self) -> None:
        self._client.close()
        self._http.close()

    def instant(self, query: str) -> list[dict[str, Any]]:
        try:
            result: list[dict[str, Any]] = self._client.custom_query(query)
        except (PrometheusApiClientException, requests.RequestException) as error:
            raise PrometheusError(f"Prometheus at {self.url}: {error}") from None
        return result

    def range(self, query: str, end: datetime, span: timedelta, step_s: float) -> list[dict[str, Any]]:
        try:
            result: list[dict[str, Any]] = self._client.custom_query_range(
                query, start_time=end - span, end_time=end, step=f"{max(1, round(step_s))}s")
        except (PrometheusApiClientException, requests.RequestException) as error:
            raise PrometheusError(f"Prometheus at {self.url}: {error}") from None
        return result

    def alerts(self) -> list[dict[str, Any]]:
        try:
            response = self._http.get("/api/v1/alerts")
            response.raise_for_status()
            alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise PrometheusError(f"Prometheus at {self.url}: cannot read alerts ({error})") from None
        return alerts


def vector_by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """An instant vector as {label value: sample}; NaN samples (0/0: no traffic) are left out."""
    out: dict[str, float] = {}
    for series in result:
        value = float(series["value"][1])
        if not math.isnan(value):
            out[series["metric"].get(label, "")] = value
    return out


def scalar(result: list[dict[str, Any]]) -> float | None:
    """The single sample of an aggregated instant vector; None when empty or NaN."""
    values = [float(s["value"][1]) for s in result]
    return values[0] if values and not math.isnan(values[0]) else None


def matrix_frame(result: list[dict[str, Any]], label: str | None, *, name: str = "value",
                 scale: float = 1.0) -> pd.DataFrame:
    """A range-query matrix as a wide frame: a UTC time index and one column per value of `label` (or one
    column `name` for an unlabelled aggregate). NaN samples stay NaN (gaps in the chart)."""
    columns: dict[str, pd.Series] = {}
    for series in result:
        column = series["metric"].get(label, "") if label else name
        stamps = pd.to_datetime([float(t) for t, _ in series["values"]], unit="s", utc=True)
        columns[column or "(none)"] = pd.Series([float(v) * scale for _, v in series["values"]], index=stamps)
    frame = pd.DataFrame(columns)
    frame.index.name = "time"
    return frame.sort_index()
