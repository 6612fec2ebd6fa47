"""Printing results: rich tables for people, one JSON document with --json for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


def emit(data: Any, as_json: bool, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if as_json:
        emit_json(data)
    else:
        emit_table(title, columns, rows)
