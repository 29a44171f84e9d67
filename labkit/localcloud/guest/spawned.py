"""An execution environment started as a fresh interpreter, where there is no fork server.

On macOS and Windows (and on Linux when asked, `LABKIT_LOCAL_RUNTIME=portable`) each environment
is `python -I -S` running this: it reads its settings from the first line of its standard input,
keeps the rest of that pipe as its lifeline (when the lab ends, by any means, the pipe closes and
the environment ends too: every OS closes a dead process's pipes), loads the AWS SDK, takes
Lambda's file system rules (`fsguard.py`) and runs the runtime loop (`lambdaloop.py`).
"""

from __future__ import annotations

import json
import os
import sys
import threading


def main() -> None:
    """Set up from the lab's settings and serve invocations until stopped."""
    settings = json.loads(sys.stdin.buffer.readline())
    lifeline = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    threading.Thread(target=_watch, args=(lifeline,), name="labkit-lifeline", daemon=True).start()
    # Loaded before the rules, as the runtime's own: the handler finds the SDK ready, as in AWS's images.
    import socket  # noqa: F401 - on Windows it needs SYSTEMROOT once, when it first loads

    import boto3  # noqa: F401
    import botocore.session  # noqa: F401

    from . import fsguard, lambdaloop

    if settings["host_root"]:
        del os.environ["SYSTEMROOT"]
    fsguard.install(settings["task"], settings["tmp"], settings["runtime"], settings["tmp_mb"], settings["hidden"])
    sys.path.insert(0, fsguard.TASK)
    lambdaloop.run(os.environ["_HANDLER"])


def _watch(lifeline: int) -> None:
    while True:
        try:
            data = os.read(lifeline, 512)
        except OSError:
            data = b""
        if not data:
            os._exit(1)


if __name__ == "__main__":
    main()
