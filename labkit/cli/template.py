"""`labkit template`: a CloudFormation template of the pipeline as built, however it was built.

It reads the pipeline through the describe APIs (`labkit.iac.export`) and writes the template with
the function's code beside it, ready for `aws cloudformation package` and `deploy` under any prefix.
"""

from __future__ import annotations

import argparse
import sys

from labkit.cli import common
from labkit.errors import ResourceError

EVERYTHING = 9


def cmd_template(args: argparse.Namespace) -> int:
    """Write the template of the pipeline (of --prefix, else the environment's) to --out, its code beside it."""
    overrides = {} if args.prefix is None else {"prefix": args.prefix}
    lab = common.connected_lab(**overrides)
    exported = lab.export_template()
    if len(exported.missing) == EVERYTHING:
        raise ResourceError(
            f"Nothing of the pipeline of prefix {lab.config.prefix or '-'} was found: build it first "
            "(notebooks 01-04, or `labkit up`), or give the prefix it was built with (--prefix)."
        )
    for path in exported.write(args.out):
        print(path)
    if exported.missing:
        print(f"labkit: not found, left out of the template: {', '.join(exported.missing)}", file=sys.stderr)
    return 0
