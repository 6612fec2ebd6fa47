"""Real components in tests: locally a missing part may skip with a reason; in CI it is a failure."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("LLMFLEET_REQUIRE_REAL") == "1"


def require_or_skip(available: bool, what: str) -> None:
    """Call at the start of a test or fixture that needs a real component."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is required in CI but not available", pytrace=False)
    pytest.skip(f"{what} is not available here (it is required in CI)")
