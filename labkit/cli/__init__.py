"""The `labkit` command: serve the local cloud, build, publish, watch and remove the pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from labkit.config import BACKEND_AWS, DEFAULT_PORT, ENV_BACKEND, ENV_ENDPOINT, Config
from labkit.errors import ConfigError, InputError, LabkitError
from labkit.lab import Lab, connect
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER, generate_orders

EXIT_ERROR = 2
EXIT_BELOW_FULL = 1  # `labkit grade`: graded, but not full marks


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if args.func is cmd_lab:
        from labkit.notebook import jupyterlab

        args.jupyter_args = jupyterlab.jupyter_args(unknown)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each AWS resource change")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int | None], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    serve = add("serve", cmd_serve, "run the local cloud on 127.0.0.1 until interrupted")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")

    lab = add(
        "lab",
        cmd_lab,
        "start the local cloud and JupyterLab on the notebooks; stop both on exit. "
        "Any other argument goes to JupyterLab (`labkit lab --port 9999 --no-browser`).",
    )
    # Exact names only: `--no` must reach JupyterLab, not be read as an abbreviation of --notebooks.
    lab.allow_abbrev = False
    lab.add_argument(
        "--cloud-port", type=int, default=DEFAULT_PORT, help=f"local cloud port (default {DEFAULT_PORT}; 0: any free)"
    )
    lab.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="folder to open (default notebooks)")

    add("up", cmd_up, "build the whole pipeline (steps 1-4); safe to run again")

    publish = add("publish", cmd_publish, "publish orders to the topic")
    what = publish.add_mutually_exclusive_group(required=True)
    what.add_argument("--sample", action="store_true", help="the assignment's sample order")
    what.add_argument("--file", type=Path, help="a JSON file: one order, or a list of orders")
    what.add_argument("--json", dest="json_text", metavar="TEXT", help="one order as JSON text")
    what.add_argument("--body", metavar="TEXT", help="any message body, sent as it is (to test bad input)")
    what.add_argument("--count", type=int, metavar="N", help="N generated orders")

    status = add("status", cmd_status, "stored orders and queue/DLQ counts")
    status.add_argument("--json", action="store_true", help="print JSON")

    orders = add("orders", cmd_orders, "list the stored orders")
    orders.add_argument("--json", action="store_true", help="print JSON")

    logs = add("logs", cmd_logs, "the function's CloudWatch log events: timestamp and message, oldest first")
    logs.add_argument("--order", metavar="ID", help="only the invocations of this orderId")
    logs.add_argument("--request-id", metavar="ID", help="only the invocation with this request id")
    logs.add_argument("--since", default="1h", metavar="DURATION", help="how far back: 30s, 10m, 2h, 1d (default 1h)")

    redrive = add("redrive", cmd_redrive, "move messages from the DLQ back to the order queue")
    redrive.add_argument("--limit", type=int, default=None, help="move at most this many")

    down = add("down", cmd_down, "delete the pipeline's resources that labkit created (its tags, this prefix)")
    down.add_argument("--yes", action="store_true", help="on a real AWS account, delete without asking")

    demo = add("demo", cmd_demo, "build, feed and inspect the pipeline in a throwaway in-process local cloud")
    demo.add_argument("--visibility-timeout", type=int, default=2, help="seconds before a failed message is retried")

    grade = add(
        "grade", cmd_grade, "check and score what was built and how it behaves; exit 1 below full marks, 2 on error"
    )
    behaviour = grade.add_mutually_exclusive_group()
    behaviour.add_argument(
        "--probe", action="store_true", help="send a probe order and a bad message through, then clean up (default)"
    )
    behaviour.add_argument(
        "--no-probe", action="store_true", help="only read what was built, for accounts where publishing is not allowed"
    )
    grade.add_argument("--json", action="store_true", help="print JSON")
    grade.add_argument("--junit", type=Path, metavar="FILE", help="also write the result as JUnit XML")
    grade.add_argument("--roster", type=Path, metavar="CSV", help="grade every student of a roster (needs --out)")
    grade.add_argument("--out", type=Path, metavar="CSV", help="the gradebook CSV that --roster writes")
    grade.add_argument("--rubric", type=Path, metavar="FILE", help="a rubric JSON overriding points and requirements")
    grade.add_argument("--prefix", help="grade the resources named with this prefix")
    return parser


def _lab(**overrides: Any) -> Lab:
    config = Config.from_env(**overrides)
    if config.is_local:
        raise ConfigError(
            "No local cloud to talk to: start one with `labkit serve` and "
            f"`export {ENV_ENDPOINT}=http://127.0.0.1:{DEFAULT_PORT}`, or set {ENV_BACKEND}=aws for a real account."
        )
    return connect(config)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the local cloud until SIGINT or SIGTERM."""
    from labkit.localcloud import LocalCloud

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        cloud = LocalCloud.server(Config.from_env(), host=args.host, port=args.port)
    except OSError as exc:
        raise ConfigError(f"Cannot listen on {args.host}:{args.port} ({exc.strerror}): pick another --port.") from exc
    print(f"Local cloud listening on {cloud.endpoint_url}", flush=True)
    print(f"In another shell: export {ENV_ENDPOINT}={cloud.endpoint_url}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    cloud.stop()
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Serve the local cloud and run JupyterLab against it, as `make lab` does; stop both on Ctrl-C or SIGTERM."""
    from labkit.localcloud import LocalCloud
    from labkit.notebook import jupyterlab
    from labkit.notebook.workspace import working_copy

    if not args.notebooks.is_dir():
        raise ConfigError(f"No notebooks folder at {args.notebooks}: run from the repository or pass --notebooks.")
    folder, _ = working_copy(args.notebooks)
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = jupyterlab.command(folder, args.jupyter_args, as_root=as_root)
    try:
        cloud = LocalCloud.server(Config.from_env(), port=args.cloud_port)
    except OSError as exc:
        raise ConfigError(
            f"Port {args.cloud_port} is taken ({exc.strerror}): is a local cloud running? Use --cloud-port."
        ) from exc
    print(f"Local cloud listening on {cloud.endpoint_url}; notebooks reach it through {ENV_ENDPOINT}.", flush=True)
    if as_root and "--allow-root" in command:
        # JupyterLab refuses to start as root without it; containers and classroom VMs often run as root.
        print("labkit: running as root, so JupyterLab starts with --allow-root", file=sys.stderr, flush=True)
    print(f"Kernels idle for {jupyterlab.KERNEL_IDLE_MINUTES} minutes are stopped to save memory.", flush=True)
    env = dict(os.environ, **{ENV_ENDPOINT: str(cloud.endpoint_url)})
    print(f"Opening your copies in {folder} (git-ignored); {args.notebooks} stays as it is.", flush=True)
    try:
        return jupyterlab.run(command, env)
    finally:
        cloud.stop()


def cmd_up(args: argparse.Namespace) -> int:
    """Build the pipeline and print what stands."""
    pipeline = _lab().up()
    assert pipeline is not None
    rows = [
        ("table", pipeline.table.name),
        ("topic", pipeline.topic.arn),
        ("queue", f"{pipeline.queue.name} (DLQ {pipeline.dlq.name})"),
        ("subscription", pipeline.subscription.arn),
        ("role", f"{pipeline.role.name} ({pipeline.role.policy})"),
        ("function", pipeline.function.name),
        ("trigger", f"{pipeline.mapping.state}, batch size {pipeline.mapping.batch_size}"),
    ]
    for label, value in rows:
        print(f"{label:<13}{value}")
    return 0


def _orders_from_args(args: argparse.Namespace) -> list[Any]:
    if args.sample:
        return [SAMPLE_ORDER]
    if args.body is not None:
        return [args.body]
    if args.count is not None:
        if args.count < 1:
            raise InputError(f"--count must be 1 or more, not {args.count}.")
        return list(generate_orders(args.count))
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot read {args.file}: {exc.strerror}.") from exc
        source = str(args.file)
    else:
        text, source = args.json_text, "--json"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source} is not valid JSON: {exc}. Use --body to send it as it is.") from exc
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise InputError(f"{source} must hold an order (a JSON object) or a list of orders.")
    return items


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish what the arguments name."""
    orders = _orders_from_args(args)
    lab = _lab()
    ids = lab.publish_orders(orders)
    print(f"published {len(ids)} message(s) to {lab.config.topic_name}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print counts of orders, queue and DLQ."""
    lab = _lab()
    counts = lab.counts()
    problem = lab.delivery_problem()
    if args.json:
        print(json.dumps({**counts, "delivery_problem": problem}))
    else:
        for key, value in counts.items():
            print(f"{key:<17}{'-' if value is None else value}")
        if problem:
            print(f"delivery         {problem}")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    """Print the stored orders."""
    items = _lab().order_items()
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
    elif not items:
        print("no orders stored")
    else:
        import pandas as pd

        print(pd.DataFrame(items).to_string(index=False))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the function's log events as CloudWatch shows them."""
    from labkit.observe import logs

    try:
        since = logs.parse_since(args.since)
    except ValueError as exc:
        raise InputError(f"--since: {exc}") from exc
    lab = _lab()
    events = logs.select_events(lab, since, order_id=args.order, request_id=args.request_id)
    if not events:
        which = " and ".join(
            filter(None, [args.order and f"order {args.order}", args.request_id and f"request {args.request_id}"])
        )
        print(f"no log events in {logs.log_group(lab)} {f'for {which} ' if which else ''}in the last {args.since}")
        return 0
    for event in events:
        print(logs.format_event(event))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Move DLQ messages back to the queue."""
    if args.limit is not None and args.limit < 0:
        raise InputError(f"--limit must be 0 or more, not {args.limit}.")
    try:
        moved = _lab().redrive(limit=args.limit)
    except KeyboardInterrupt:
        print(
            "labkit: redrive interrupted; nothing was lost (each message is sent before it is deleted). "
            "Run `labkit redrive` again to move the rest; a message sent twice is stored once.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(f"moved {moved} message(s) from the DLQ back to the order queue")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Delete what labkit built; on a real AWS account, after showing it and asking (unless --yes)."""
    from labkit.resources import teardown

    lab = _lab()
    chosen = teardown.plan(lab.config, lab.clients)
    if lab.config.backend == BACKEND_AWS and chosen.delete and not args.yes:
        print(f"In AWS account {lab.clients.account_id} ({lab.config.region}) labkit down deletes:")
        for found in chosen.delete:
            print(f"  {found.describe()}")
        if not _confirmed(f"Delete {len(chosen.delete)} resource(s)? [y/N] "):
            print("nothing deleted")
            return 1
    removed = teardown.execute(lab.config, lab.clients, chosen)
    gone = [name for name, deleted in removed.items() if deleted]
    if gone:
        print("deleted: " + ", ".join(gone))
    else:
        print(
            "deleted: nothing " + ("(labkit created none of what it found)" if chosen.keep else "(no resources found)")
        )
    for kept in chosen.keep:
        print(f"kept:    {kept.describe()}")
    return 0


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:  # no terminal to ask: the answer is no
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade one pipeline (exit 1 below full marks), or every student of a roster into a gradebook (exit 0)."""
    from labkit import grading

    rubric = grading.load_rubric(args.rubric)
    overrides = {} if args.prefix is None else {"prefix": args.prefix}
    if args.roster is None:
        if args.out is not None:
            raise InputError("--out names the gradebook that --roster writes; give --roster too.")
        report = _lab(**overrides).grade(probe=not args.no_probe, rubric=rubric)
        if args.junit is not None:
            report.to_junit(args.junit)
        print(report.to_json() if args.json else report.to_table())
        # Scripts and CI read the status: below full marks is not a success.
        return EXIT_BELOW_FULL if report.score < report.max_score else 0
    if args.out is None:
        raise InputError("--roster needs --out FILE for the gradebook CSV.")
    rows = grading.grade_roster(
        args.roster, Config.from_env(**overrides), probe=not args.no_probe, rubric=rubric, allow_local=False
    )
    grading.write_gradebook(rows, args.out)
    if args.junit is not None:
        grading.write_junit([r.junit_suite() for r in rows], args.junit)
    if args.json:
        print(json.dumps([r.as_csv_row() for r in rows], ensure_ascii=False))
    else:
        print(grading.gradebook_table(rows))
        print(f"gradebook: {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole lab in one process: build, publish a good and a bad order, wait, report."""
    started = time.monotonic()
    config = Config.from_env().with_(
        backend="moto", endpoint_url=None, function_timeout=1, visibility_timeout=args.visibility_timeout
    )
    with connect(config) as lab:
        lab.up()
        print("built: table, topic, queue + DLQ, subscription, role, function, trigger")
        lab.publish_order(SAMPLE_ORDER)
        lab.publish_order(MALFORMED_BODY)
        print(f"published the sample order and one malformed message; retries every {args.visibility_timeout}s")
        counts = lab.wait_until_drained(timeout=6 * args.visibility_timeout + 30)
        print("stored order:")
        print(json.dumps(lab.get_order(SAMPLE_ORDER["orderId"]), indent=2, ensure_ascii=False))
        print(f"DLQ: {counts['dlq_visible']}")
    print(f"demo took {time.monotonic() - started:.1f}s")
    return 0
