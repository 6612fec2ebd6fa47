"""Reading YAML or JSON spec files given on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from control_plane.cli.errors import CliError


def read_spec(path: Path) -> dict[str, Any]:
    """A mapping from a .yaml/.yml/.json file; any problem is a CliError naming the file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CliError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}".replace("\n", " "))
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping at the top level")
    return data
