"""The llmfleet dashboard (`streamlit run dashboard/app.py`). Reads the control-plane API and, when
configured, Prometheus; see docs/dashboard.md."""

from __future__ import annotations

import streamlit as st

from dashboard.config import ConfigError, DashboardConfig
from dashboard.views import alerts, deployment, fleet, rollouts


def main() -> None:
    st.set_page_config(page_title="llmfleet", page_icon="📊", layout="wide")
    navigation = st.navigation([
        st.Page(fleet.page, title="Fleet", url_path="fleet", default=True),
        st.Page(deployment.page, title="Deployment", url_path="deployment"),
        st.Page(rollouts.page, title="Rollouts", url_path="rollouts"),
        st.Page(alerts.page, title="Alerts", url_path="alerts"),
    ])
    with st.sidebar:
        try:
            config = DashboardConfig.from_env()
            st.caption(f"API {config.api_url}")
            st.caption(f"Prometheus {config.prometheus_url or 'not configured'}")
        except ConfigError:
            pass  # the page says it
    navigation.run()


main()
