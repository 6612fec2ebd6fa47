"""Small helper so every StrEnum column is stored the same portable way (a checked VARCHAR of its values)."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


def str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    return Enum(
        enum_class,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
