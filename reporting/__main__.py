"""Entry point for `python -m reporting`."""

import sys

from reporting.cli import main

sys.exit(main())
