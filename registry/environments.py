"""The environments a version is promoted through, in order."""

from __future__ import annotations

import enum


class Environment(enum.StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"

    @property
    def previous(self) -> Environment | None:
        order = list(Environment)
        index = order.index(self)
        return order[index - 1] if index > 0 else None
