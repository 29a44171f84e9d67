"""The `labkit` command line as argparse reads it: every command, its arguments and its help, in one place.

`build()` returns a fresh parser whose subcommands carry the function that runs them (`args.func`),
taken from the modules of their concern (`local`, `pipeline`, `grade`) when the parser is built, so the
help lists the commands in the order a student meets them and a test can replace one command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from labkit.cli import grade, local, pipeline, template
from labkit.config import DEFAULT_PORT

DESCRIPTION = "The `labkit` command: serve the local cloud, build, publish, watch and remove the pipeline."


def build() -> argparse.ArgumentParser:
    """The parser of `labkit` and its commands."""
    parser = argparse.ArgumentParser(prog="labkit", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each AWS resource change")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int | None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    serve = add("serve", local.cmd_serve, "run the local cloud on 127.0.0.1 until interrupted")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")

    lab = add(
        "lab",
        local.cmd_lab,
        "start the local cloud and JupyterLab on the notebooks; stop both on exit. "
        "Any other argument goes to JupyterLab (`labkit lab --port 9999 --no-browser`).",
    )
    # Exact names only: `--no` must reach JupyterLab, not be read as an abbreviation of --notebooks.
    lab.allow_abbrev = False
    lab.add_argument(
        "--cloud-port", type=int, default=DEFAULT_PORT, help=f"local cloud port (default {DEFAULT_PORT}; 0: any free)"
    )
    lab.add_argument(
        "--instructor",
        action="store_true",
        help="open the instructor edition (notebooks/, with the solutions) instead of the student edition (student/)",
    )
    lab.add_argument("--notebooks", type=Path, default=None, help="a folder of notebooks to open copies of instead")

    course = add(
        "course",
        local.cmd_course,
        "lay out an nbgrader course in DIR (nbgrader_config.py, source/orders-lab/) for `nbgrader generate_assignment`, "
        "`autograde` and `export`; with --student-edition, also refresh the student edition there (needs nbgrader)",
    )
    course.add_argument("dir", type=Path, metavar="DIR", help="the course directory (made if missing)")
    course.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="the instructor edition")
    course.add_argument(
        "--student-edition",
        action="store_true",
        help="write nbgrader's student edition of the notebooks into DIR instead of a course (how student/ is made)",
    )

    add("up", pipeline.cmd_up, "build the whole pipeline (steps 1-4); safe to run again")

    publish = add("publish", pipeline.cmd_publish, "publish orders to the topic")
    what = publish.add_mutually_exclusive_group(required=True)
    what.add_argument("--sample", action="store_true", help="the assignment's sample order")
    what.add_argument("--file", type=Path, help="a JSON file: one order, or a list of orders")
    what.add_argument("--json", dest="json_text", metavar="TEXT", help="one order as JSON text")
    what.add_argument("--body", metavar="TEXT", help="any message body, sent as it is (to test bad input)")
    what.add_argument("--count", type=int, metavar="N", help="N generated orders")

    status = add("status", pipeline.cmd_status, "stored orders and queue/DLQ counts")
    status.add_argument("--json", action="store_true", help="print JSON")

    orders = add("orders", pipeline.cmd_orders, "list the stored orders")
    orders.add_argument("--json", action="store_true", help="print JSON")

    logs = add("logs", pipeline.cmd_logs, "the function's CloudWatch log events: timestamp and message, oldest first")
    logs.add_argument("--order", metavar="ID", help="only the invocations of this orderId")
    logs.add_argument("--request-id", metavar="ID", help="only the invocation with this request id")
    logs.add_argument("--since", default="1h", metavar="DURATION", help="how far back: 30s, 10m, 2h, 1d (default 1h)")

    redrive = add("redrive", pipeline.cmd_redrive, "move messages from the DLQ back to the order queue")
    redrive.add_argument("--limit", type=int, default=None, help="move at most this many")

    down = add("down", pipeline.cmd_down, "delete the pipeline's resources that labkit created (its tags, this prefix)")
    down.add_argument("--yes", action="store_true", help="on a real AWS account, delete without asking")
    down.add_argument(
        "--untagged",
        action="store_true",
        help="also delete resources of the pipeline's names that lack labkit's tags (built by hand, without them)",
    )

    demo = add("demo", local.cmd_demo, "build, feed and inspect the pipeline in a throwaway in-process local cloud")
    demo.add_argument("--visibility-timeout", type=int, default=2, help="seconds before a failed message is retried")

    grader = add(
        "grade",
        grade.cmd_grade,
        "check and score what was built and how it behaves; exit 1 below full marks, 2 on error",
    )
    behaviour = grader.add_mutually_exclusive_group()
    behaviour.add_argument(
        "--probe", action="store_true", help="send a probe order and a bad message through, then clean up (default)"
    )
    behaviour.add_argument(
        "--no-probe", action="store_true", help="only read what was built, for accounts where publishing is not allowed"
    )
    grader.add_argument("--json", action="store_true", help="print JSON")
    grader.add_argument("--junit", type=Path, metavar="FILE", help="also write the result as JUnit XML")
    grader.add_argument("--roster", type=Path, metavar="CSV", help="grade every student of a roster (needs --out)")
    grader.add_argument("--out", type=Path, metavar="CSV", help="the gradebook CSV that --roster writes")
    grader.add_argument("--rubric", type=Path, metavar="FILE", help="a rubric JSON overriding points and requirements")
    grader.add_argument("--prefix", help="grade the resources named with this prefix")

    exporter = add(
        "template",
        template.cmd_template,
        "write a CloudFormation template of the pipeline as built (any way), its code beside it",
    )
    exporter.add_argument(
        "-o", "--out", type=Path, default=Path("exported/template.yaml"), help="where (default exported/template.yaml)"
    )
    exporter.add_argument("--prefix", help="export the resources named with this prefix")
    return parser
