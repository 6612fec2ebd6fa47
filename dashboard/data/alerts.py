"""Alerts firing in Prometheus (its rules are in control_plane/data/prometheus/rules/)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.prometheus import Prometheus

SEVERITY_ORDER = {"page": 0, "critical": 0, "ticket": 1, "warning": 1, "info": 2}
COLUMNS = ["alertname", "severity", "state", "deployment", "cluster", "summary", "active_since"]


def alerts_frame(alerts: list[dict[str, Any]]) -> pd.DataFrame:
    """Firing first, then pending; by severity, then name."""
    rows = []
    for a in alerts:
        labels, notes = a.get("labels", {}), a.get("annotations", {})
        rows.append({"alertname": labels.get("alertname", ""), "severity": labels.get("severity", ""),
                     "state": a.get("state", ""), "deployment": labels.get("deployment", ""),
                     "cluster": labels.get("cluster", ""),
                     "summary": notes.get("summary") or notes.get("description") or "",
                     "active_since": a.get("activeAt", "")})
    rows.sort(key=lambda r: (r["state"] != "firing", SEVERITY_ORDER.get(r["severity"], 3), r["alertname"],
                             r["deployment"], r["cluster"]))
    return pd.DataFrame(rows, columns=COLUMNS)


def load_alerts(prom: Prometheus) -> pd.DataFrame:
    return alerts_frame(prom.alerts())
