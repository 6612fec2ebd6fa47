"""The deployment page over a real API: cost and $ per 1M tokens as the API computes them, replicas against
the SLO, declared demand, placement, and routing shares only for a key allowed to read them."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import formatting as fmt
from dashboard.context import PROMETHEUS_MISSING
from tests.unit.dashboard.conftest import SeededApi, configure, metrics


def _deployment() -> None:
    from dashboard.views import deployment

    deployment.page()


def _tables(at: AppTest) -> list:  # type: ignore[type-arg]
    return [t.value for t in at.dataframe]


def test_deployment_page_shows_cost_per_token_latency_against_the_slo_and_the_plan(
    seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, seeded_api)
    at = AppTest.from_function(_deployment, default_timeout=30).run()
    assert not at.exception, at.exception
    cost = seeded_api.get("/v1/deployments/chat/cost")
    assert cost["usd_per_million_tokens"] is not None
    shown = metrics(at)
    assert shown["Cost now"] == fmt.usd_per_hour(cost["usd_per_hour"])
    assert shown["$ per 1M tokens"] == fmt.usd(cost["usd_per_million_tokens"], 4)
    assert shown["Goodput share (tokens within SLO)"] == "40.0%"
    assert shown["Budget"] == "$5.00/h"
    assert at.selectbox[0].value == "chat"
    assert PROMETHEUS_MISSING in [i.value for i in at.info]
    assert any("p95 TTFT ≤ 500 ms, p95 TPOT ≤ 50 ms" in c.value for c in at.caption)

    tables = _tables(at)
    replicas = next(t for t in tables if "within_slo" in t.columns)
    assert len(replicas) == 4
    assert sorted(replicas["within_slo"].dropna().tolist()) == [False, True, True]
    demand = next(t for t in tables if "rps" in t.columns).set_index("client_region")
    assert demand.loc["eu-central-1", "rps"] == 5
    placement = next(t for t in tables if "tensor_parallel" in t.columns)
    assert placement["count"].sum() == 4
    regions = next(t for t in tables if list(t.columns) == ["region", "usd_per_hour", "replicas"])
    assert regions["usd_per_hour"].sum() == pytest.approx(cost["usd_per_hour"])
    history = next(t for t in tables if "action" in t.columns)
    assert "create" in set(history["action"])
    # A read key may not see the routing table (it carries key hashes): said, not crashed.
    assert any("Routing shares need an admin key" in c.value for c in at.caption)


def test_an_admin_of_the_team_sees_the_routing_shares_and_weights(
    seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, seeded_api, key=seeded_api.team_admin_key)
    at = AppTest.from_function(_deployment, default_timeout=30).run()
    assert not at.exception, at.exception
    route = next(d for d in seeded_api.get("/v1/routing", key=seeded_api.admin_key)["deployments"] if d["name"] == "chat")
    shares = next(t for t in _tables(at) if t.index.name == "client_region")
    for region, split in route["shares"].items():
        for cluster, share in split.items():
            assert shares.loc[region, cluster] == pytest.approx(share)
    assert any("Traffic weights: `v1` " in m.value for m in at.markdown)


def test_the_deployment_in_the_url_is_preselected(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    team = {"Authorization": f"Bearer {seeded_api.team_admin_key}"}
    from tests.support.fleet import deployment_body, ok

    ok(seeded_api.client.post("/v1/deployments", json=deployment_body("batch"), headers=team), 201)
    configure(monkeypatch, seeded_api)
    at = AppTest.from_function(_deployment, default_timeout=30)
    at.query_params["deployment"] = "chat"
    at.run()
    assert not at.exception and at.selectbox[0].value == "chat"
    at.selectbox[0].select("batch").run()
    assert metrics(at)["Cost now"] == fmt.usd_per_hour(0.0)
    assert metrics(at)["$ per 1M tokens"] == "n/a"
