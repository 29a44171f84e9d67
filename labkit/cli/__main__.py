"""`python -m labkit.cli`: the `labkit` command, for where its script is not on PATH (a subprocess of this Python)."""

import sys

from labkit.cli import main

sys.exit(main())
