"""`python -m rollout`: the rollout commands (canary, blue-green, shadow, rollback, status)."""

import sys

from rollout.cli import main

if __name__ == "__main__":
    sys.exit(main())
