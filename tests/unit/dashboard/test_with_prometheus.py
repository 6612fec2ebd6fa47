"""The pages with a real Prometheus scraping the real API's /metrics and gateway traffic: SLO attainment
from the gateway histograms and the API's SLO buckets, the A/B arms side by side, and alerts firing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import formatting as fmt
from dashboard import queries
from dashboard.context import PROMETHEUS_MISSING
from dashboard.data.deployment import RATE_WINDOW
from tests.unit.dashboard.conftest import SeededApi, configure, metrics
from tests.unit.dashboard.prometheus_support import (
    FIRING_RULE,
    GatewayTraffic,
    Requests,
    running_prometheus,
    serve_metrics,
    wait_for,
)

# Per tick: v1 (baseline) 3 fast + 1 slow request; v2 (canary) 2 fast, 1 slow, 1 failing fast.
# TTFT SLO 500 ms (bucket 0.5): good 3/4 and 3/4 → 6/8; TPOT SLO 50 ms (bucket 0.04): all good.
TRAFFIC = [
    Requests("v1", "baseline", "200", 3, ttft_s=0.2, tpot_s=0.02),
    Requests("v1", "baseline", "200", 1, ttft_s=2.0, tpot_s=0.02),
    Requests("v2", "canary", "200", 2, ttft_s=0.2, tpot_s=0.02, region="eu-central-1"),
    Requests("v2", "canary", "200", 1, ttft_s=2.0, tpot_s=0.02, region="eu-central-1"),
    Requests("v2", "canary", "503", 1, ttft_s=0.1, tpot_s=0.02, region="eu-central-1"),
]


@pytest.fixture
def prometheus(seeded_api: SeededApi, tmp_path: Path) -> Iterator[str]:
    api_target = seeded_api.url.removeprefix("http://")
    with serve_metrics(GatewayTraffic("chat", TRAFFIC)) as gateway, \
            running_prometheus(tmp_path / "prometheus", [api_target, gateway], FIRING_RULE) as url:
        # Two scrapes of everything: rates exist and the SLO buckets are joined.
        wait_for(url, queries.attainment("ttft", "1h"))
        wait_for(url, queries.FLEET_COST)
        yield url


def test_fleet_attainment_and_cost_history_come_from_prometheus(
    seeded_api: SeededApi, prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, seeded_api, prometheus=prometheus)
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception, at.exception
    shown = metrics(at)
    assert shown["SLO attainment (requests, 1h)"] == "75.0%"
    assert shown["Cost now"] == fmt.usd_per_hour(seeded_api.get("/v1/costs")["total_usd_per_hour"])
    assert PROMETHEUS_MISSING not in [i.value for i in at.info]
    assert not at.warning, [w.value for w in at.warning]
    row = next(t.value for t in at.dataframe if "deployment" in t.value.columns).set_index("deployment").loc["chat"]
    assert row["slo_attainment"] == pytest.approx(0.75)
    assert not any(c.value.startswith("No cost samples") for c in at.caption)


def test_deployment_arms_side_by_side_and_latency_trend(
    seeded_api: SeededApi, prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rates per arm need two scrapes of the gateway's counters (the fixture waits only for attainment); only
    # the canary has errors, so only it has an error-ratio series.
    wait_for(prometheus, queries.requests_by("chat", "version, arm", RATE_WINDOW), lambda r: len(r) == 2)
    wait_for(prometheus, queries.error_ratio_by("chat", "version, arm", RATE_WINDOW))
    configure(monkeypatch, seeded_api, prometheus=prometheus)
    at = AppTest.from_function(_deployment, default_timeout=30).run()
    assert not at.exception, at.exception
    assert not at.warning, [w.value for w in at.warning]
    arms = next(t.value for t in at.dataframe if "arm" in t.value.columns).set_index("arm")
    assert arms["version"].to_dict() == {"baseline": "v1", "canary": "v2"}
    assert arms.loc["baseline", "error_ratio"] == 0.0 and arms.loc["canary", "error_ratio"] == pytest.approx(0.25)
    assert arms.loc["canary", "req_per_s"] > 0 and math.isclose(arms.loc["baseline", "req_per_s"],
                                                               arms.loc["canary", "req_per_s"], rel_tol=1e-6)
    assert not any("No gateway latency" in c.value for c in at.caption)


def test_alerts_page_lists_what_fires(seeded_api: SeededApi, prometheus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wait_for(prometheus, 'ALERTS{alertstate="firing"}')
    configure(monkeypatch, seeded_api, prometheus=prometheus)
    at = AppTest.from_function(_alerts, default_timeout=30).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["1 alert firing, 0 pending."]
    row = at.dataframe[0].value.iloc[0]
    assert (row["alertname"], row["severity"], row["deployment"]) == ("DashboardTestPage", "page", "chat")
    assert row["summary"] == "chat is burning its TTFT error budget"


def test_alerts_page_without_prometheus_says_so(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, seeded_api)
    at = AppTest.from_function(_alerts, default_timeout=30).run()
    assert not at.exception and [i.value for i in at.info] == [PROMETHEUS_MISSING] and not at.dataframe


def test_an_unreachable_prometheus_is_a_warning_not_a_crash(
    seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ports import free_port

    configure(monkeypatch, seeded_api, prometheus=f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_function(_fleet, default_timeout=30).run()
    assert not at.exception, at.exception
    assert metrics(at)["Cost now"] == fmt.usd_per_hour(seeded_api.get("/v1/costs")["total_usd_per_hour"])
    assert any(w.value.startswith("Prometheus at http://127.0.0.1:") for w in at.warning)


def _fleet() -> None:
    from dashboard.views import fleet

    fleet.page()


def _deployment() -> None:
    from dashboard.views import deployment

    deployment.page()


def _alerts() -> None:
    from dashboard.views import alerts

    alerts.page()
