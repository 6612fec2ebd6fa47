"""Alerts firing in Prometheus."""

from __future__ import annotations

import streamlit as st

from dashboard.context import Context, current, prometheus_notice
from dashboard.data.alerts import load_alerts
from dashboard.views.common import FETCH_ERRORS, refreshing


def page() -> None:
    ctx = current()
    st.title("Alerts")
    prometheus_notice(ctx)
    if ctx.prom is not None:
        refreshing(ctx, lambda: _body(ctx))


def _body(ctx: Context) -> None:
    assert ctx.prom is not None
    try:
        alerts = load_alerts(ctx.prom)
    except FETCH_ERRORS as error:
        st.error(str(error))
        return
    firing = alerts[alerts["state"] == "firing"]
    pending = alerts[alerts["state"] == "pending"]
    if firing.empty:
        st.success(f"No alerts firing ({len(pending)} pending).")
    else:
        st.error(f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing, {len(pending)} pending.")
    if not alerts.empty:
        st.dataframe(alerts, hide_index=True)
