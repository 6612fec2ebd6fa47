"""What every page needs: the config and the clients, made once per process for each configuration."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.api import ControlPlane
from dashboard.config import PROMETHEUS_URL_ENV, ConfigError, DashboardConfig
from dashboard.prometheus import Prometheus

PROMETHEUS_MISSING = (
    f"Prometheus is not configured (set {PROMETHEUS_URL_ENV}): cost over time, latency trends, A/B arms and "
    "alerts need it. Everything else on this page comes from the control-plane API alone."
)


@dataclass(frozen=True, slots=True)
class Context:
    config: DashboardConfig
    api: ControlPlane
    prom: Prometheus | None


@st.cache_resource(show_spinner=False)
def _api(url: str, key: str) -> ControlPlane:
    return ControlPlane(url, key)


@st.cache_resource(show_spinner=False)
def _prometheus(url: str) -> Prometheus:
    return Prometheus(url)


def current() -> Context:
    """The context, or a plain error on the page (and the script stops) when the settings are wrong."""
    try:
        config = DashboardConfig.from_env()
    except ConfigError as error:
        st.error(f"The dashboard is not configured: {error}")
        st.stop()
    prom = _prometheus(config.prometheus_url) if config.prometheus_url else None
    return Context(config=config, api=_api(config.api_url, config.api_key), prom=prom)


def prometheus_notice(ctx: Context) -> None:
    if ctx.prom is None:
        st.info(PROMETHEUS_MISSING, icon="ℹ️")
