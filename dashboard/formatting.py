"""How the dashboard writes numbers. One place, so tests (and the browser test) format the API's values
exactly as the page does."""

from __future__ import annotations


def usd_per_hour(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}/h"


def usd(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"${value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def millis(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def rate(value: float | None, unit: str = "req/s") -> str:
    return "n/a" if value is None else f"{value:,.2f} {unit}"
