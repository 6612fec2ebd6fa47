"""`python -m agents.agent --cluster C --api-url U [--backend sim|vllm]` (key in LLMFLEET_AGENT_API_KEY)."""

import sys

from agents.agent.config import parse_config
from agents.agent.main import run


def main() -> int:
    try:
        config, log_level = parse_config()
        run(config, log_level)
    except ValueError as error:  # bad settings, or a backend that cannot work here
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
