"""Entry point: `python -m agents.sim ...` (see agents.sim.cli)."""

import sys

from agents.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
