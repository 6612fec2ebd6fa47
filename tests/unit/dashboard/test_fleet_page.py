"""The fleet overview over a real API: cost now equals `GET /v1/costs`, the goodput share is the tokens
within the SLO, replicas by region/GPU/market are listed, and without Prometheus the page says so."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import formatting as fmt
from dashboard.context import PROMETHEUS_MISSING
from tests.unit.dashboard.conftest import SeededApi, configure, metrics


def _fleet() -> None:
    from dashboard.views import fleet

    fleet.page()


def test_fleet_page_shows_cost_attainment_and_replicas_from_the_api(
    seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, seeded_api)
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception, at.exception
    costs = seeded_api.get("/v1/costs")
    assert costs["total_usd_per_hour"] > 0
    shown = metrics(at)
    assert shown["Cost now"] == fmt.usd_per_hour(costs["total_usd_per_hour"])
    # 2000 of the 5000 tokens/s come from replicas whose window met 500/50 ms.
    assert shown["Goodput share (tokens within SLO)"] == "40.0%"
    assert shown["Billed replicas"] == "4 (4 GPUs)"
    assert shown["SLO attainment (requests, 1h)"] == "n/a"
    assert [i.value for i in at.info] == [PROMETHEUS_MISSING]
    assert "Prometheus is not configured" in PROMETHEUS_MISSING

    tables = [t.value for t in at.dataframe]
    deployments = next(t for t in tables if "deployment" in t.columns)
    row = deployments.set_index("deployment").loc["chat"]
    assert row["usd_per_hour"] == pytest.approx(costs["total_usd_per_hour"])
    assert row["goodput_share"] == pytest.approx(0.4) and row["budget_usd_per_hour"] == 5.0
    by_key = {tuple(sorted(t["key"])): t for t in tables if "key" in t.columns}
    regions = by_key[("eu-central-1", "us-east-1")].set_index("key")
    assert regions.loc["us-east-1", "replicas"] == 3 and regions.loc["eu-central-1", "replicas"] == 1
    assert by_key[("H100", "L4")].set_index("key").loc["L4", "replicas"] == 3
    assert by_key[("on-demand",)].set_index("key").loc["on-demand", "gpus"] == 4


def test_another_teams_key_sees_an_empty_fleet(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:

    other = seeded_api.client.post("/v1/keys", json={"team": "ads", "scopes": ["read"], "name": "d"},
                                   headers={"Authorization": f"Bearer {seeded_api.admin_key}"}).json()
    configure(monkeypatch, seeded_api, key=other["key"])
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception, at.exception
    assert metrics(at)["Cost now"] == fmt.usd_per_hour(0.0)
    assert metrics(at)["Goodput share (tokens within SLO)"] == "n/a"


def test_a_wrong_key_is_reported_plainly(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, seeded_api, key="lf_not_a_key")
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception
    assert any("unknown or revoked API key" in e.value and "401" in e.value for e in at.error)


def test_missing_configuration_is_reported_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMFLEET_API_KEY", raising=False)
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The dashboard is not configured: no API key: set LLMFLEET_API_KEY (a key with the read scope is enough)"]


def test_the_whole_app_opens_on_the_fleet_page(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    configure(monkeypatch, seeded_api)
    at = AppTest.from_file(str(Path(fmt.__file__).parent / "app.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Fleet"
    assert metrics(at)["Cost now"] == fmt.usd_per_hour(seeded_api.get("/v1/costs")["total_usd_per_hour"])
    assert f"API {seeded_api.url}" in [c.value for c in at.sidebar.caption]
