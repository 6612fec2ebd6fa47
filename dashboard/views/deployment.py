"""A deployment: latency against the SLO, traffic by region, A/B arms side by side, $ per 1M tokens, and the
current plan and why."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import formatting as fmt
from dashboard.context import Context, current, prometheus_notice
from dashboard.data.deployment import RATE_WINDOW, TREND_SPAN, DeploymentView, load_deployment
from dashboard.views.common import FETCH_ERRORS, pick_deployment, refreshing, show_problems

MS = st.column_config.NumberColumn(format="%.0f ms")


def page() -> None:
    ctx = current()
    st.title("Deployment")
    prometheus_notice(ctx)
    name = pick_deployment(ctx, key="deployment_page")
    if name is not None:
        refreshing(ctx, lambda: _body(ctx, name))


def _body(ctx: Context, name: str) -> None:
    try:
        view = load_deployment(ctx.api, ctx.prom, name, datetime.now(UTC))
    except FETCH_ERRORS as error:
        st.error(str(error))
        return
    show_problems(view.problems)
    _headline(view)
    _latency(view, ctx)
    _traffic(view, ctx)
    _arms(view, ctx)
    _plan(view)


def _headline(v: DeploymentView) -> None:
    s = v.summary
    st.markdown(f"**{v.name}** · team `{s['team']}` · {s['model']} `{s['version']}` · {s['environment']} · "
                f"phase **{s['phase']}** · replicas {', '.join(f'{n} {k}' for k, n in s['replicas_by_status'].items()) or 'none'}")
    cost, per_million, goodput, share, budget = st.columns(5)
    cost.metric("Cost now", fmt.usd_per_hour(v.cost.get("usd_per_hour")))
    per_million.metric("$ per 1M tokens", fmt.usd(v.cost.get("usd_per_million_tokens"), 4))
    per_usd = v.cost.get("goodput_tokens_per_usd")
    goodput.metric("Goodput per $", "n/a" if per_usd is None else f"{per_usd:,.0f} tokens")
    share.metric("Goodput share (tokens within SLO)", fmt.percent(v.goodput.share if v.goodput else None))
    budget.metric("Budget", fmt.usd_per_hour(s["budget_usd_per_hour"]) if s["budget_usd_per_hour"] else "none")


def _latency(v: DeploymentView, ctx: Context) -> None:
    st.subheader("Latency against the SLO")
    st.caption(f"SLO: p95 TTFT ≤ {v.summary['ttft_p95_ms']:g} ms, p95 TPOT ≤ {v.summary['tpot_p95_ms']:g} ms")
    if ctx.prom is not None:
        if v.latency is None or v.latency.empty:
            st.caption("No gateway latency in Prometheus yet (no traffic through a gateway).")
        else:
            ttft, tpot = st.columns(2)
            ttft.line_chart(v.latency[["p95 TTFT (ms)", "SLO TTFT (ms)"]])
            tpot.line_chart(v.latency[["p95 TPOT (ms)", "SLO TPOT (ms)"]])
            st.caption(f"Gateway p95 over a {RATE_WINDOW} window, last {TREND_SPAN}.")
    st.markdown("**Replicas, latest window reported by their agents**")
    st.dataframe(v.replicas, hide_index=True, column_config={
        "req_per_s": st.column_config.NumberColumn("req/s", format="%.2f"), "ttft_p95_ms": MS, "tpot_p95_ms": MS})


def _traffic(v: DeploymentView, ctx: Context) -> None:
    st.subheader("Traffic by client region")
    if ctx.prom is not None and v.traffic is not None and not v.traffic.empty:
        st.line_chart(v.traffic, y_label="req/s")
    elif ctx.prom is not None:
        st.caption("No gateway traffic in Prometheus yet.")
    st.markdown("**Declared demand**")
    st.dataframe(v.demand, hide_index=True)
    if v.shares is None:
        st.caption("Routing shares need an admin key (the routing table also carries gateway key hashes).")
    elif v.shares.empty:
        st.caption("No routing shares published yet.")
    else:
        st.markdown("**Routing shares (client region → cluster)**")
        st.dataframe(v.shares.pivot(index="client_region", columns="cluster", values="share").fillna(0.0),
                     column_config={c: st.column_config.NumberColumn(format="percent") for c in v.shares["cluster"].unique()})


def _arms(v: DeploymentView, ctx: Context) -> None:
    st.subheader("Versions and A/B arms")
    if v.version_weights:
        st.markdown("Traffic weights: " + ", ".join(f"`{k}` {w:.0%}" for k, w in sorted(v.version_weights.items())))
    if v.experiment:
        arms = ", ".join(f"{a['name']} = `{a['version']}` {a['percent']:g}%" for a in v.experiment.get("arms", []))
        st.markdown(f"Experiment **{v.experiment.get('name')}**: {arms}")
    if ctx.prom is None:
        st.caption("Arms side by side need Prometheus (gateway metrics labelled by version and arm).")
    elif v.arms is None or v.arms.empty:
        st.caption("No gateway requests in the last window.")
    else:
        st.dataframe(v.arms, hide_index=True, column_config={
            "req_per_s": st.column_config.NumberColumn("req/s", format="%.2f"),
            "error_ratio": st.column_config.NumberColumn("errors", format="percent"),
            "ttft_p95_ms": MS, "tpot_p95_ms": MS,
            "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.1f")})


def _plan(v: DeploymentView) -> None:
    st.subheader("Current plan and why")
    if v.plan is not None:
        p = v.plan
        st.markdown(f"Plan **{p.status}** · {fmt.usd_per_hour(p.cost_per_hour)} "
                    f"(LP lower bound {fmt.usd_per_hour(p.lower_bound_per_hour)})")
        for reason in p.reasons:
            st.markdown(f"- {reason}")
    placement, regions = st.columns(2)
    with placement:
        st.markdown("**Placement**")
        st.dataframe(v.placement, hide_index=True)
    with regions:
        st.markdown("**Cost by region**")
        st.dataframe(v.by_region, hide_index=True,
                     column_config={"usd_per_hour": st.column_config.NumberColumn("$/h", format="$%.2f")})
    if v.plan is None:
        st.caption("This API does not expose the planner's reasons; recent changes to the deployment follow.")
    st.markdown("**Recent changes**")
    st.dataframe(v.history, hide_index=True)
