"""One way to fail on the command line: a one-line message on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer

P = ParamSpec("P")
R = TypeVar("R")

USAGE_EXIT_CODE = 2


class CliError(Exception):
    """Bad input or a refused request: shown as `error: <message>`, exit code 2."""


def fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(USAGE_EXIT_CODE)


def cli_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn CliError into the one-line message and exit code 2."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except CliError as error:
            raise fail(str(error)) from None

    return wrapper
