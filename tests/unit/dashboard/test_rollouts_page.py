"""The rollouts page: each step's verdict, the paused step, and links into the Temporal UI."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.unit.dashboard.conftest import SeededApi, configure, seed_rollout


def _rollouts() -> None:
    from dashboard.views import rollouts

    rollouts.page()


def test_rollout_steps_verdicts_and_temporal_links(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_rollout(seeded_api)
    configure(monkeypatch, seeded_api, temporal_ui="http://127.0.0.1:8233")
    at = AppTest.from_function(_rollouts, default_timeout=30).run()
    assert not at.exception, at.exception
    assert [e.label for e in at.expander] == ["⏸️ v1 → v2: paused (step 2 of 3)"]
    link = "http://127.0.0.1:8233/namespaces/default/workflows/rollout-chat-v2"
    assert any(f"[rollout-chat-v2 in the Temporal UI]({link})" == m.value for m in at.markdown)
    steps = at.dataframe[0].value
    assert steps["state"].tolist() == ["analysed", "analysed", "pending"]
    assert steps["verdict"].tolist()[:2] == ["pass", "inconclusive"]
    assert steps.loc[1, "reasons"] == "only 3 canary requests (< 20)"
    assert steps.loc[0, "canary_ttft_p95_ms"] == 210.0 and steps.loc[0, "baseline_ttft_p95_ms"] == 200.0
    assert any("without Temporal" in c.value for c in at.caption)


def test_no_rollouts_yet(seeded_api: SeededApi, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, seeded_api)
    at = AppTest.from_function(_rollouts, default_timeout=30).run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("No rollouts of chat yet") for c in at.caption)
