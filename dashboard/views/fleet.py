"""Fleet overview: cost now and over time, SLO attainment, replicas by region, GPU type and market."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import formatting as fmt
from dashboard.context import Context, current, prometheus_notice
from dashboard.data.fleet import ATTAINMENT_WINDOW, HISTORY_SPANS, FleetOverview, load_fleet
from dashboard.views.common import FETCH_ERRORS, refreshing, show_problems

GROUP_TITLES = {"region": "Region", "accelerator": "GPU type", "market": "Market"}


def page() -> None:
    ctx = current()
    st.title("Fleet")
    prometheus_notice(ctx)
    span = "1h"
    if ctx.prom is not None:
        span = st.segmented_control("Cost history", list(HISTORY_SPANS), default="1h", key="history") or "1h"
    refreshing(ctx, lambda: _body(ctx, span))


def _body(ctx: Context, span: str) -> None:
    try:
        overview = load_fleet(ctx.api, ctx.prom, datetime.now(UTC), HISTORY_SPANS[span])
    except FETCH_ERRORS as error:
        st.error(str(error))
        return
    show_problems(overview.problems)
    _headline(overview, ctx)
    _cost_history(overview, ctx, span)
    _deployments(overview)
    _replicas(overview)
    st.caption(f"As of {overview.as_of} · refreshes every {ctx.config.refresh_s:g} s")


def _headline(o: FleetOverview, ctx: Context) -> None:
    cost, replicas, attain, goodput = st.columns(4)
    cost.metric("Cost now", fmt.usd_per_hour(o.total_usd_per_hour))
    replicas.metric("Billed replicas", f"{o.replicas} ({o.gpus} GPUs)")
    attain.metric(f"SLO attainment (requests, {ATTAINMENT_WINDOW})",
                  fmt.percent(o.attainment.fleet) if o.attainment is not None else "n/a",
                  help="Share of gateway requests within the TTFT and TPOT SLO (the smaller of the two), "
                       "from Prometheus." + ("" if ctx.prom is not None else " Prometheus is not configured."))
    goodput.metric("Goodput share (tokens within SLO)", fmt.percent(o.goodput_share),
                   help="Share of tokens served by replicas whose latest window met the SLO, from the API.")


def _cost_history(o: FleetOverview, ctx: Context, span: str) -> None:
    st.subheader(f"Cost over time ($/h, last {span})")
    if ctx.prom is None:
        st.caption("Needs Prometheus.")
    elif o.cost_history is None or o.cost_history.empty:
        st.caption("No cost samples in Prometheus yet.")
    else:
        st.line_chart(o.cost_history)


def _deployments(o: FleetOverview) -> None:
    st.subheader("Deployments")
    if o.deployments.empty:
        st.caption("No deployments.")
        return
    st.dataframe(o.deployments, hide_index=True, column_config={
        "usd_per_hour": st.column_config.NumberColumn("$/h", format="$%.2f"),
        "budget_usd_per_hour": st.column_config.NumberColumn("budget $/h", format="$%.2f"),
        "usd_per_million_tokens": st.column_config.NumberColumn("$ per 1M tokens", format="$%.4f"),
        "goodput_share": st.column_config.ProgressColumn("goodput share", min_value=0.0, max_value=1.0,
                                                         format="percent"),
        "slo_attainment": st.column_config.ProgressColumn("SLO attainment", min_value=0.0, max_value=1.0,
                                                          format="percent"),
    })


def _replicas(o: FleetOverview) -> None:
    st.subheader("Replicas and cost by region, GPU type and market")
    for column, (group, title) in zip(st.columns(len(GROUP_TITLES)), GROUP_TITLES.items(), strict=True):
        frame = o.breakdowns[group]
        with column:
            st.markdown(f"**{title}**")
            if frame.empty:
                st.caption("No billed replicas.")
                continue
            st.bar_chart(frame.set_index("key")[["replicas"]], horizontal=True, height=160)
            st.dataframe(frame, hide_index=True, column_config={
                "key": title, "usd_per_hour": st.column_config.NumberColumn("$/h", format="$%.2f")})
