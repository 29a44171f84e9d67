"""The `labkit` command, against a local cloud server, and its errors."""

import json

import pytest

from labkit.cli import main


@pytest.fixture
def endpoint(local_server, monkeypatch):
    """Point the CLI at a fresh local cloud server, as `labkit serve` + AWS_ENDPOINT_URL would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_server.endpoint_url)
    monkeypatch.setenv("LABKIT_FUNCTION_TIMEOUT", "2")
    monkeypatch.setenv("LABKIT_VISIBILITY_TIMEOUT", "3")
    return local_server.endpoint_url


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def status(capsys):
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    return json.loads(out)


def wait_status(capsys, predicate, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = status(capsys)
        if predicate(counts):
            return counts
        time.sleep(0.1)
    pytest.fail(f"status never reached the expected state: {counts}")


def test_up_publish_status_orders_down(endpoint, capsys, tmp_path):
    code, out, _ = run(capsys, "up")
    assert code == 0 and "trigger      Enabled, batch size 1" in out
    assert run(capsys, "up")[0] == 0
    assert run(capsys, "publish", "--sample")[1] == "published 1 message(s) to OrderTopic\n"
    orders_file = tmp_path / "orders.json"
    orders_file.write_text(json.dumps([{**order, "orderId": f"F{i}"} for i, order in enumerate([{}, {}])]))
    good = {
        "orderId": "J1",
        "userId": "U1",
        "itemName": "Mouse",
        "quantity": 2,
        "status": "new",
        "timestamp": "2025-05-03T12:00:00Z",
    }
    assert run(capsys, "publish", "--json", json.dumps(good))[0] == 0
    assert run(capsys, "publish", "--count", "5")[1] == "published 5 message(s) to OrderTopic\n"
    assert run(capsys, "publish", "--body", "not an order")[0] == 0
    assert run(capsys, "publish", "--file", str(orders_file))[0] == 0
    counts = wait_status(capsys, lambda c: c["orders"] == 7 and c["dlq_visible"] == 3)
    assert set(counts) >= {"orders", "queue_visible", "queue_in_flight", "dlq_visible"}
    code, out, _ = run(capsys, "orders", "--json")
    ids = {order["orderId"] for order in json.loads(out)}
    assert {"01234", "J1"} <= ids and len(ids) == 7
    code, out, _ = run(capsys, "orders")
    assert "Laptop" in out
    code, out, _ = run(capsys, "down")
    assert code == 0 and out.startswith("deleted: trigger, function, role, topic, queue, dlq, table")
    assert status(capsys) == {
        "orders": None,
        "queue_visible": None,
        "queue_in_flight": None,
        "dlq_visible": None,
        "dlq_in_flight": None,
        "delivery_problem": None,
        "function_failures": None,
    }


def test_status_says_why_sns_cannot_deliver(endpoint, capsys):
    """A queue policy that does not allow the topic: SNS drops the order and counts it; status names the fix.
    https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html
    """
    import boto3

    run(capsys, "up")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    run(capsys, "publish", "--sample")
    counts = status(capsys)
    assert counts["queue_visible"] == counts["queue_in_flight"] == 0 and counts["orders"] == 0
    problem = counts["delivery_problem"]
    assert "Queue OrderQueue has no access policy" in problem
    assert "SNS dropped 1 notification(s)" in problem and "Access policy" in problem
    code, out, _ = run(capsys, "status")
    assert code == 0 and "delivery         Queue OrderQueue has no access policy" in out


def test_redrive_moves_dlq_messages_back(endpoint, capsys):
    run(capsys, "up")
    run(capsys, "publish", "--body", "{broken")
    wait_status(capsys, lambda c: c["dlq_visible"] == 1)
    code, out, _ = run(capsys, "redrive")
    assert code == 0 and out == "moved 1 message(s) from the DLQ back to the order queue\n"
    assert wait_status(capsys, lambda c: c["dlq_visible"] == 1)["orders"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "--json", "{bad"], "--json is not valid JSON"),
        (["publish", "--json", "[1, 2]"], "must hold an order"),
        (["publish", "--count", "0"], "--count must be 1 or more"),
        (["publish", "--file", "no-such-file.json"], "Cannot read no-such-file.json"),
    ],
)
def test_bad_input_gets_one_clear_line(endpoint, capsys, argv, message):
    run(capsys, "up")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("labkit: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_publish_before_up_names_the_missing_topic(endpoint, capsys):
    code, _, err = run(capsys, "publish", "--sample")
    assert code == 2 and "Topic OrderTopic does not exist yet" in err


def test_without_endpoint_the_cli_says_how_to_start_one(capsys):
    code, _, err = run(capsys, "status")
    assert code == 2
    assert "labkit serve" in err and "AWS_ENDPOINT_URL=http://127.0.0.1:5055" in err


def test_unreachable_endpoint_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run(capsys, "status")
    assert code == 2 and "cannot reach http://127.0.0.1:9" in err and err.count("\n") == 1


def test_bad_configuration_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_BACKEND", "gcp")
    code, _, err = run(capsys, "status")
    assert code == 2 and "Unknown backend 'gcp'" in err


@pytest.mark.slow
def test_demo_prints_the_stored_order_and_the_dlq_count(capsys):
    code, out, _ = run(capsys, "demo", "--visibility-timeout", "1")
    assert code == 0
    assert '"orderId": "01234"' in out and '"itemName": "Laptop"' in out
    assert "\nDLQ: 1\n" in out


# --- labkit lab: arguments, root, kernel culling, and a real start and stop ---------------------------------------


@pytest.fixture
def lab_args(monkeypatch):
    """Run `labkit ...` through main() with cmd_lab replaced by a recorder; return the parsed arguments."""
    import labkit.cli as cli
    from labkit.cli import local

    seen = []
    monkeypatch.setattr(local, "cmd_lab", lambda args: seen.append(args) or 0)

    def parse(*argv):
        assert cli.main(list(argv)) == 0
        return seen.pop()

    return parse


@pytest.mark.parametrize(
    ("argv", "jupyter_args", "cloud_port", "notebooks"),
    [
        (["--port", "9999", "--no-browser"], ["--port", "9999", "--no-browser"], 5055, "None"),
        (["--no-browser", "--cloud-port", "0", "--notebooks", "nb", "--port=1"], ["--no-browser", "--port=1"], 0, "nb"),
        (["--", "--allow-root"], ["--allow-root"], 5055, "None"),
        # `--no` is JupyterLab's, not an abbreviation of --notebooks.
        (["--no", "--notebooks=nb"], ["--no"], 5055, "nb"),
        ([], [], 5055, "None"),
    ],
)
def test_lab_passes_every_argument_it_does_not_know_to_jupyterlab(lab_args, argv, jupyter_args, cloud_port, notebooks):
    args = lab_args("lab", *argv)
    assert (args.jupyter_args, args.cloud_port, str(args.notebooks)) == (jupyter_args, cloud_port, notebooks)


def test_other_commands_still_refuse_arguments_they_do_not_know(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["status", "--no-browser"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --no-browser" in capsys.readouterr().err


def test_jupyterlab_command_allows_root_only_as_root_and_culls_idle_kernels():
    import sys
    from pathlib import Path

    from labkit.notebook.jupyterlab import command as jupyter_lab_command

    culling = [
        "--MappingKernelManager.cull_idle_timeout=900",
        "--MappingKernelManager.cull_interval=60",
        "--MappingKernelManager.cull_connected=True",
    ]
    start = [sys.executable, "-m", "jupyterlab", "--notebook-dir=nb"]
    user = ["--port", "9999", "--no-browser"]
    assert jupyter_lab_command(Path("nb"), user, as_root=True) == [*start, "--allow-root", *culling, *user]
    assert jupyter_lab_command(Path("nb"), user, as_root=False) == [*start, *culling, *user]


def test_jupyterlab_command_lets_the_user_override_labkits_settings():
    from pathlib import Path

    from labkit.notebook.jupyterlab import command as jupyter_lab_command

    user = ["--allow-root", "--MappingKernelManager.cull_idle_timeout=60"]
    command = jupyter_lab_command(Path("nb"), user, as_root=True)
    assert command.count("--allow-root") == 1
    assert [a for a in command if "cull_idle_timeout" in a] == ["--MappingKernelManager.cull_idle_timeout=60"]
    assert "--MappingKernelManager.cull_interval=60" in command


def _children(pid):
    """The processes whose parent is *pid* (Linux /proc)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _descendants(pid):
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _cmdline(pid):
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid):
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_lab_starts_jupyterlab_as_this_user_and_leaves_no_process_behind(tmp_path):
    """GIVEN `labkit lab` with JupyterLab arguments (as root in CI and containers, or as a user)
    WHEN JupyterLab is listening with a kernel running and labkit gets Ctrl-C (SIGINT)
    THEN it started (with --allow-root when root, saying so), culls idle kernels, and JupyterLab,
    its kernel and the local cloud are all gone when labkit exits.

    Culling: https://jupyter-server.readthedocs.io/en/latest/other/full-config.html (MappingKernelManager.cull_*).
    """
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    dirs = {name: tmp_path / name for name in ("notebooks", "runtime", "config", "data", "ipython")}
    for path in dirs.values():
        path.mkdir()
    # labkit lab opens working copies of the notebooks it is given, so it needs one to copy.
    (dirs["notebooks"] / "00_empty.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
    env.update(
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        IPYTHONDIR=str(dirs["ipython"]),
        PYTHONUNBUFFERED="1",
    )
    token = os.urandom(16).hex()
    log = tmp_path / "lab.log"
    argv = [
        *("lab", "--cloud-port", "0", "--notebooks", str(dirs["notebooks"])),
        # Everything below is JupyterLab's: a free port, loopback only, a known token, nothing fetched.
        *("--port", "0", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"),
        *("--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"),
    ]
    with log.open("wb") as out:
        labkit = subprocess.Popen(
            [sys.executable, "-m", "labkit.cli", *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def api(path, method="GET"):
        request = urllib.request.Request(f"{url}api/{path}", method=method, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def wait_for(what, probe, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert labkit.poll() is None, f"labkit lab exited ({labkit.returncode}) before {what}:\n{log.read_text()}"
            try:
                if value := probe():
                    return value
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        pytest.fail(f"no {what} within {timeout:.0f} s:\n{log.read_text()}")

    processes, left = [], []
    try:
        info = wait_for(
            "JupyterLab runtime file", lambda: [p.read_text() for p in dirs["runtime"].glob("jpserver-*.json")]
        )
        url = json.loads(info[0])["url"]
        assert wait_for("/api/status", lambda: api("status"))["started"]
        api("kernels", method="POST")
        wait_for("a kernel process", lambda: any(b"ipykernel" in _cmdline(p) for p in _descendants(labkit.pid)))
        processes = _descendants(labkit.pid)
        os.kill(labkit.pid, signal.SIGINT)
        assert labkit.wait(timeout=60) == 0
    finally:
        # On a failure above: JupyterLab runs in a session of its own, so labkit's group is not all there is.
        processes = processes or _descendants(labkit.pid)
        if labkit.poll() is None:
            labkit.send_signal(signal.SIGTERM)
            try:
                labkit.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(labkit.pid, signal.SIGKILL)
                labkit.wait()
        # A kernel's parent reaps it a moment after it exits.
        deadline = time.monotonic() + 10
        while any(map(_alive, processes)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in processes if _alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    assert not left, f"processes {left} outlived labkit lab:\n{text}"
    assert ("running as root, so JupyterLab starts with --allow-root" in text) == (os.geteuid() == 0), text
    assert "Culling kernels with idle durations > 900 seconds at 60 second intervals" in text, text
    assert "Culling kernels even with connected clients" in text, text
