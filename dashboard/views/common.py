"""Bits several pages share: picking a deployment, reporting problems, refreshing."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.api import ApiError
from dashboard.context import Context
from dashboard.prometheus import PrometheusError


def refreshing(ctx: Context, body: Callable[[], None]) -> None:
    """Run `body` as a fragment that Streamlit reruns every `refresh_s` (no page reload, no custom JS)."""
    st.fragment(run_every=ctx.config.refresh_s)(body)()


def show_problems(problems: list[str]) -> None:
    for problem in problems:
        st.warning(problem)


def pick_deployment(ctx: Context, key: str) -> str | None:
    """A deployment chosen in a select box, remembered in the URL (?deployment=...) so links can point at it."""
    try:
        names = sorted(d["name"] for d in ctx.api.deployments())
    except ApiError as error:
        st.error(str(error))
        return None
    if not names:
        st.info("No deployments yet: create one with `llmfleet deployments create`.")
        return None
    wanted = st.query_params.get("deployment")
    index = names.index(wanted) if wanted in names else 0
    chosen = st.selectbox("Deployment", names, index=index, key=key)
    if chosen is not None:
        st.query_params["deployment"] = chosen
    return chosen


FETCH_ERRORS = (ApiError, PrometheusError)
