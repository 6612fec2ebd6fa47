"""The pure parts: config from the environment, the API client's errors (httpx MockTransport), PromQL
escaping, and shaping rollouts and alerts into frames."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from control_plane.stack import dashboard as stack_dashboard
from dashboard import config, queries
from dashboard.api import ApiError, ControlPlane
from dashboard.config import ConfigError, DashboardConfig
from dashboard.data.alerts import alerts_frame
from dashboard.data.rollouts import steps_frame, temporal_link
from dashboard.data.slo import fleet_goodput, goodput_of


def test_config_reads_the_environment_and_round_trips() -> None:
    cfg = DashboardConfig.from_env({"LLMFLEET_API_KEY": "lf_x", "LLMFLEET_API_URL": "http://h:1/",
                                    "LLMFLEET_PROMETHEUS_URL": " ", "LLMFLEET_DASHBOARD_REFRESH_S": "5"})
    assert (cfg.api_url, cfg.prometheus_url, cfg.temporal_ui_url, cfg.refresh_s) == ("http://h:1", None, None, 5.0)
    assert DashboardConfig.from_env(cfg.to_env()) == cfg


@pytest.mark.parametrize(("env", "message"), [
    ({}, "no API key: set LLMFLEET_API_KEY"),
    ({"LLMFLEET_API_KEY": "k", "LLMFLEET_API_URL": "h:1"}, "LLMFLEET_API_URL must be an http(s) URL, not 'h:1'"),
    ({"LLMFLEET_API_KEY": "k", "LLMFLEET_DASHBOARD_REFRESH_S": "soon"}, "must be a number of seconds, not 'soon'"),
    ({"LLMFLEET_API_KEY": "k", "LLMFLEET_DASHBOARD_REFRESH_S": "0"}, "between 1 and 3600 seconds, not 0"),
])
def test_bad_config_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DashboardConfig.from_env(env)


def test_the_supervisor_sets_the_variables_the_dashboard_reads() -> None:
    for name in ("API_URL_ENV", "API_KEY_ENV", "PROMETHEUS_URL_ENV", "TEMPORAL_UI_URL_ENV", "REFRESH_ENV"):
        assert getattr(stack_dashboard, name) == getattr(config, name)
    argv = stack_dashboard.dashboard_argv("127.0.0.1", 8600)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    assert {"--server.headless=true", "--browser.gatherUsageStats=false", "--server.address=127.0.0.1",
            "--server.port=8600"} <= set(argv)


def _api(handler: httpx.MockTransport) -> ControlPlane:
    return ControlPlane("http://api", "lf_k", transport=handler)


def test_api_errors_carry_the_problem_detail_and_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer lf_k"
        if request.url.path == "/v1/routing":
            return httpx.Response(403, json={"detail": "admin only"})
        if request.url.raw_path == b"/v1/deployments/a%2Fb/plan":  # the name stays one path segment
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(422, json={"detail": "group_by: bad"})

    api = _api(httpx.MockTransport(handler))
    assert api.routing() is None and api.plan("a/b") is None  # not allowed / not served: said on the page
    with pytest.raises(ApiError, match=r"group_by: bad \(HTTP 422\)") as caught:
        api.costs("region")
    assert caught.value.status == 422
    with pytest.raises(ValueError, match="group_by must be one of"):
        api.costs("colour")


def test_an_unreachable_api_is_an_api_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiError, match="cannot reach the control-plane API at http://api"):
        _api(httpx.MockTransport(refuse)).deployments()


def test_promql_label_values_are_escaped() -> None:
    q = queries.requests_by('we"ird\\name', "arm", "5m")
    assert 'deployment="we\\"ird\\\\name"' in q
    with pytest.raises(ValueError):
        queries.cost_by("colour")


def test_goodput_share_from_the_cost_endpoint() -> None:
    # 2 $/h; 1000 tokens/s of which 250 good: goodput_tokens_per_usd = 250 * 3600 / 2.
    one = goodput_of({"usd_per_hour": 2.0, "tokens_per_second": 1000.0, "goodput_tokens_per_usd": 450_000.0})
    assert one is not None and one.share == pytest.approx(0.25)
    other = goodput_of({"usd_per_hour": 1.0, "tokens_per_second": 3000.0, "goodput_tokens_per_usd": 3000 * 3600.0})
    assert fleet_goodput([one, other, None]) == pytest.approx((250 + 3000) / 4000)
    assert goodput_of({"usd_per_hour": 0.0, "tokens_per_second": 0.0, "goodput_tokens_per_usd": None}) is None
    assert fleet_goodput([None]) is None


def test_rollout_steps_and_links() -> None:
    rollout = {"steps": [5.0, 50.0, 100.0], "current_step": 2, "state": "running",
               "verdicts": [{"step": 0, "verdict": "pass", "reasons": [], "canary": {"requests": 40.0}}]}
    frame = steps_frame(rollout)
    assert frame["state"].tolist() == ["analysed", "done", "running"]
    assert frame.loc[0, "canary_requests"] == 40.0 and frame.loc[0, "baseline_requests"] is None
    assert temporal_link("http://ui/", "prod ns", "rollout-a-v2", "r1") == \
        "http://ui/namespaces/prod%20ns/workflows/rollout-a-v2/r1"
    assert temporal_link(None, "default", "x") is None


def test_alerts_firing_first_then_by_severity() -> None:
    frame = alerts_frame([
        {"state": "pending", "labels": {"alertname": "A", "severity": "page"}, "annotations": {}},
        {"state": "firing", "labels": {"alertname": "B", "severity": "ticket"}, "annotations": {"description": "d"}},
        {"state": "firing", "labels": {"alertname": "C", "severity": "page"}, "annotations": {"summary": "s"}},
    ])
    assert frame["alertname"].tolist() == ["C", "B", "A"] and frame["summary"].tolist() == ["s", "d", ""]


def test_cli_refuses_bad_input_in_one_line() -> None:
    import typer

    from control_plane.cli.dashboard_cmd import dashboard

    app = typer.Typer()
    app.command()(dashboard)
    result = CliRunner().invoke(app, ["--api-key", "lf_x", "--prometheus-url", "localhost:9090"])
    assert result.exit_code == 2
    assert "error: --prometheus-url must be an http(s) URL, not 'localhost:9090'" in result.output
    result = CliRunner(env={"LLMFLEET_API_KEY": ""}).invoke(app, [])
    assert result.exit_code == 2 and "error: no API key" in result.output
