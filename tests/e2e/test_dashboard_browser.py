"""The dashboard in a real headless Chromium over a running local stack (`llmfleet up --json`): the fleet
page shows the cost per hour that `GET /v1/costs` reports, the goodput share the API's deployment costs imply
and (with Prometheus in the stack) the SLO attainment Prometheus computes from the gateway's requests,
formatted as the page formats them — not just that it loaded. With LLMFLEET_UPDATE_SCREENSHOT=1 the
screenshot is saved to docs/dashboard.png."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.stack.dashboard import start_dashboard, wait_for_dashboard
from control_plane.stack.processes import stop_pid
from dashboard import formatting as fmt
from dashboard import queries
from dashboard.data.fleet import ATTAINMENT_WINDOW
from dashboard.data.slo import fleet_goodput, goodput_of
from tests.e2e.test_local_stack import CLI, UP_TIMEOUT_S, _env, _first_line, workdir  # noqa: F401 - fixture
from tests.support.real_parts import require_or_skip

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
AGREE_TIMEOUT_S = 90.0  # the page and the API read the same moving fleet: retry until they agree


def _traffic(targets: list[str], key: str, stop: threading.Event, sent: dict[int, int]) -> None:
    """A trickle of chat completions (through the gateway when the stack runs one, so Prometheus sees
    requests; else straight to the replicas), so the agents report tokens and latency."""
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        while not stop.is_set():
            for url in targets:
                try:
                    answer = client.post(f"{url}/v1/chat/completions", json={
                        "model": "demo", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]})
                    sent[answer.status_code] = sent.get(answer.status_code, 0) + 1
                except httpx.HTTPError:
                    pass
            stop.wait(0.2)


def _attainment(prometheus: str) -> float | None:
    """The fleet's SLO attainment as Prometheus computes it (the smaller of the TTFT and TPOT fractions)."""
    values = []
    for slo in ("ttft", "tpot"):
        result = httpx.get(f"{prometheus}/api/v1/query", params={"query": queries.fleet_attainment(slo, ATTAINMENT_WINDOW)},
                           timeout=10).json()["data"]["result"]
        if result and result[0]["value"][1] != "NaN":
            values.append(float(result[0]["value"][1]))
    return min(values) if values else None


def _expected(api: httpx.Client, prometheus: str | None) -> dict[str, str]:
    """The key numbers as the fleet page writes them, from the API (and Prometheus)."""
    total = api.get("/v1/costs").json()["total_usd_per_hour"]
    shares = [goodput_of(api.get(f"/v1/deployments/{d['name']}/cost").json()) for d in api.get("/v1/deployments").json()]
    out = {"Cost now": fmt.usd_per_hour(total), "Goodput share (tokens within SLO)": fmt.percent(fleet_goodput(shares))}
    if prometheus is not None:
        out[f"SLO attainment (requests, {ATTAINMENT_WINDOW})"] = fmt.percent(_attainment(prometheus))
    return out


def _shown(text: str, expected: dict[str, str]) -> bool:
    return all(re.search(rf"{re.escape(label)}\s+{re.escape(value)}(\s|$)", text) for label, value in expected.items())


@pytest.fixture
def stack(workdir: Path) -> Iterator[dict[str, Any]]:  # noqa: F811 - the fixture imported above
    up = subprocess.Popen([*CLI, "up", "--json"], cwd=workdir, env=_env(), text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        yield json.loads(_first_line(up, UP_TIMEOUT_S))
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=120)


@pytest.mark.slow
def test_dashboard_in_chromium_shows_the_apis_cost_and_attainment(stack: dict[str, Any], tmp_path: Path) -> None:
    require_or_skip(shutil.which("chromium") is not None or Path(CHROMIUM).exists(), "Chromium (Debian `chromium`)")
    require_or_skip(importlib.util.find_spec("playwright") is not None, "the playwright package")
    from playwright.sync_api import sync_playwright

    api = httpx.Client(base_url=stack["api"], headers={"Authorization": f"Bearer {stack['api_key']}"}, timeout=10)
    prometheus = stack.get("prometheus")
    targets = [stack["gateway"]] if stack.get("gateway") else list(stack["replicas"].values())
    stop = threading.Event()
    sent: dict[int, int] = {}  # answers by status, for the failure message
    sender = threading.Thread(target=_traffic, args=(targets, stack["api_key"], stop, sent), daemon=True)
    sender.start()
    child = None
    try:
        url = stack.get("dashboard")
        if url is None:  # the stack does not run one: start it the way the supervisor would
            child, url = start_dashboard(api_url=stack["api"], api_key=stack["api_key"], host="127.0.0.1", port=None,
                                         log_dir=tmp_path, prometheus_url=prometheus,
                                         temporal_ui_url=stack.get("temporal_ui"), refresh_s=5)
            wait_for_dashboard(url, child, timeout=60, log=tmp_path / "dashboard.log")
        costs = api.get("/v1/costs")
        assert costs.status_code == 200, f"the stack's API does not serve /v1/costs: {costs.status_code}"
        deadline = time.monotonic() + 90  # until the agents' windows carry tokens (and Prometheus has requests)
        while True:
            tokens = api.get("/v1/deployments/demo/cost").json()["tokens_per_second"]
            attained = _attainment(prometheus) if prometheus is not None and stack.get("gateway") else 1.0
            if tokens > 0 and attained is not None:
                break
            assert time.monotonic() < deadline, f"tokens/s {tokens}, attainment {attained}, sent {sent}"
            time.sleep(1)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            deadline = time.monotonic() + AGREE_TIMEOUT_S
            while True:
                before = _expected(api, prometheus)
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_text("Cost now").wait_for(timeout=30_000)
                page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
                text = page.inner_text("body")
                after = _expected(api, prometheus)
                if _shown(text, before) or _shown(text, after) or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert _shown(text, before) or _shown(text, after), (before, after, text[:1500])
            assert after["Cost now"] != fmt.usd_per_hour(0.0) and after["Goodput share (tokens within SLO)"] != "n/a"
            if prometheus is None:
                assert "Prometheus is not configured" in text
            elif stack.get("gateway"):
                assert after[f"SLO attainment (requests, {ATTAINMENT_WINDOW})"] != "n/a"
            page.wait_for_timeout(1500)  # let the charts draw before the picture
            picture = tmp_path / "dashboard.png"
            page.screenshot(path=str(picture), full_page=True)
            browser.close()
        assert picture.stat().st_size > 10_000
        if os.environ.get("LLMFLEET_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(picture, SCREENSHOT)
    finally:
        stop.set()
        sender.join(10)
        if child is not None:
            stop_pid(child.popen.pid, child.argv)
