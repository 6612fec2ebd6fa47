"""Rollouts: steps, verdicts, and links into the Temporal UI."""

from __future__ import annotations

import streamlit as st

from dashboard.context import Context, current
from dashboard.data.rollouts import RolloutView, load_rollouts
from dashboard.views.common import FETCH_ERRORS, pick_deployment, refreshing

STATE_ICONS = {"running": "🔄", "paused": "⏸️", "promoted": "✅", "rolled_back": "↩️", "aborted": "⛔"}


def page() -> None:
    ctx = current()
    st.title("Rollouts")
    name = pick_deployment(ctx, key="rollouts_page")
    if name is not None:
        refreshing(ctx, lambda: _body(ctx, name))


def _body(ctx: Context, name: str) -> None:
    try:
        view = load_rollouts(ctx.api, name, ctx.config.temporal_ui_url)
    except FETCH_ERRORS as error:
        st.error(str(error))
        return
    _workflows(view)
    st.subheader("Rollouts")
    if not view.rollouts:
        st.caption(f"No rollouts of {name} yet: `POST /v1/deployments/{name}/rollouts` starts one.")
    for r in view.rollouts:
        icon = STATE_ICONS.get(r["state"], "•")
        title = (f"{icon} {r['from_version']} → {r['to_version']}: {r['state']} "
                 f"(step {min(r['current_step'] + 1, len(r['steps']))} of {len(r['steps'])})")
        with st.expander(title, expanded=r["state"] in ("running", "paused")):
            if r.get("url"):
                st.markdown(f"[{r['workflow_id']} in the Temporal UI]({r['url']})")
            elif r.get("workflow_id"):
                st.caption(f"workflow `{r['workflow_id']}`")
            st.dataframe(view.steps[r["to_version"]], hide_index=True, column_config={
                "percent": st.column_config.NumberColumn("traffic %", format="%g%%")})


def _workflows(view: RolloutView) -> None:
    st.subheader("Running workflows")
    if not view.temporal:
        st.caption("The API runs without Temporal: no workflows.")
    elif view.workflows.empty:
        st.caption("None running.")
    else:
        st.dataframe(view.workflows, hide_index=True, column_config={
            "url": st.column_config.LinkColumn("Temporal UI", display_text="open")})
