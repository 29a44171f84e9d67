"""Run the benchmark: `python -m labkit.bench --help`."""

import sys

from labkit.bench.cli import main

sys.exit(main())
