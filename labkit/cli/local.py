"""The `labkit` commands that run a local cloud themselves: serve, lab and demo.

`serve` runs `labkit.localcloud` as a server on 127.0.0.1 until interrupted; `lab` does the same
beside JupyterLab on a working copy of the notebooks (`labkit.notebook`) and stops both together;
`demo` builds, feeds and inspects the pipeline in a throwaway in-process cloud. Each stops the cloud it
started before it returns.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from labkit.config import ENV_ENDPOINT, Config
from labkit.errors import ConfigError
from labkit.lab import connect
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER


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
    from labkit.notebook.editions import PACKAGED, edition_dir
    from labkit.notebook.workspace import WORK_DIR, working_copy

    source = args.notebooks or edition_dir(instructor=args.instructor)
    if not source.is_dir():
        raise ConfigError(f"No notebooks folder at {source}: run from the repository or pass --notebooks.")
    # The copies go beside the edition in a checkout; an edition inside an install gets them in this folder.
    base = Path.cwd() if PACKAGED.resolve() in source.resolve().parents else source.resolve().parent
    # The instructor edition's copies sit apart from a student's own work.
    folder, _ = working_copy(source, base / WORK_DIR / ("instructor" if args.instructor else ""))
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
    if not args.instructor:
        # The student edition opens without nbgrader's instructor tools (when the instructor extra is installed).
        config = jupyterlab.student_config(folder.parent / ".labkit" / "jupyter")
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(config), os.environ.get("JUPYTER_CONFIG_PATH")]))
    edition = "instructor edition, with the solutions" if args.instructor else "student edition"
    print(f"Opening your copies of the {edition} in {folder} (git-ignored); {source} stays as it is.", flush=True)
    try:
        return jupyterlab.run(command, env)
    finally:
        cloud.stop()


def cmd_course(args: argparse.Namespace) -> int:
    """Lay out an nbgrader course directory, or write nbgrader's student edition of the notebooks."""
    from labkit.notebook import editions

    if args.student_edition:
        written = editions.generate_student_edition(args.notebooks, args.dir)
        print(
            f"wrote the student edition ({len(written)} notebooks) to {args.dir}, made by nbgrader from {args.notebooks}"
        )
        return 0
    source = editions.write_course(args.dir, args.notebooks)
    print(f"course {editions.COURSE_ID} in {args.dir}: nbgrader_config.py, and {source} (the instructor edition)")
    print(f"next, in {args.dir}: nbgrader generate_assignment {editions.ASSIGNMENT}  (the student edition: release/)")
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
