"""Domain errors raised by registry operations; the API maps each to an RFC 9457 problem."""

from __future__ import annotations


class RegistryError(Exception):
    """Base class. `detail` is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(RegistryError):
    """The object does not exist, or belongs to another team (indistinguishable on purpose)."""


class Conflict(RegistryError):
    """The change collides with existing state: a duplicate name, or a stale version."""


class Invalid(RegistryError):
    """The request is well-formed but refers to things that do not fit together."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field
