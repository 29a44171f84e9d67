"""The `labkit` command: serve the local cloud, build, publish, watch and remove the pipeline.

`main()` (the `labkit` script, and `python -m labkit.cli`) parses the command line with `parser`, runs
the command it names and turns labkit's, AWS's and botocore's errors into one `labkit: ...` line and
exit status 2. The commands are grouped by concern: `local` runs a local cloud (serve, lab, demo),
`pipeline` acts on a pipeline in a cloud (up, publish, status, orders, logs, redrive, down), `grade`
grades it, `template` writes it as a CloudFormation template, and `common` holds what they share.

May import every layer below it, by module (`from labkit.lab import connect`, not `from labkit import
connect`: the package's own names share the top layer with the command). Nothing in labkit imports it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from labkit.cli import local, parser
from labkit.cli.common import EXIT_BELOW_FULL, EXIT_ERROR
from labkit.errors import InputError, LabkitError

__all__ = ["EXIT_BELOW_FULL", "EXIT_ERROR", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    command_line = parser.build()
    args, unknown = command_line.parse_known_args(argv)
    if args.func is local.cmd_lab:
        from labkit.notebook import jupyterlab

        args.jupyter_args = jupyterlab.jupyter_args(unknown)
    elif unknown:
        command_line.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (LabkitError, InputError) as exc:
        print(f"labkit: {exc}", file=sys.stderr)
    except EndpointConnectionError as exc:
        print(
            f"labkit: cannot reach {exc.kwargs.get('endpoint_url')}: is `labkit serve` running there?", file=sys.stderr
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"labkit: AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
    except BotoCoreError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
    except BrokenPipeError:
        # The reader (`| head`) went away; that is not an error of ours.
        sys.stderr.close()
        return 0
    return EXIT_ERROR
