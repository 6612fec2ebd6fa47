"""`python -m agents.backends.skypilot`: see agents.backends.skypilot.cli."""

from __future__ import annotations

from agents.backends.skypilot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
