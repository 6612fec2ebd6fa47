import sys

from agents.gateway.main import main

if __name__ == "__main__":
    sys.exit(main())
