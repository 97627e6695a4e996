"""`python -m batch INPUT`: score a file with the champion model."""

import sys

from batch.score import main

if __name__ == "__main__":
    sys.exit(main())
