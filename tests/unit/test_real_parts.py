"""The one skip in the suite: a missing real component skips locally and fails in CI (CI=true)."""

from __future__ import annotations

import pytest

from tests.support.real_parts import require_or_skip


def test_a_missing_part_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Redis is required in CI"):
        require_or_skip(False, "Redis")


def test_a_missing_part_skips_only_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LLMFLEET_REQUIRE_REAL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="required in CI"):
        require_or_skip(False, "Redis")
    require_or_skip(True, "Redis")  # present: neither skips nor fails
