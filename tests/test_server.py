"""The local cloud as a server: state shared across clients, moto's reset API, a quiet stderr."""

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from labkit.config import Config
from labkit.lab import Lab
from labkit.orders import MALFORMED_BODY, SAMPLE_ORDER
from labkit.session import Clients


def client_lab(server, **overrides):
    """A Lab that reaches the server only over HTTP, as a notebook kernel or the CLI does."""
    config = Config.from_env({"AWS_ENDPOINT_URL": server.endpoint_url}, function_timeout=1, visibility_timeout=1)
    config = config.with_(**overrides)
    return Lab(config, Clients(config))


def test_orders_flow_through_the_server_and_state_is_shared(local_server):
    builder = client_lab(local_server)
    builder.up()
    builder.publish_orders([SAMPLE_ORDER, MALFORMED_BODY])
    # A second client (another kernel) sees what the first built and published.
    counts = client_lab(local_server).wait_until_drained(timeout=30)
    assert (counts["orders"], counts["dlq_visible"]) == (1, 1)


def test_reset_wipes_state_and_the_lambda_service_follows(local_server):
    lab = client_lab(local_server)
    lab.up()
    request = urllib.request.Request(f"{local_server.endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    assert lab.counts()["orders"] is None
    lab.up()
    lab.publish_order()
    assert lab.wait_until_drained(timeout=20)["orders"] == 1


@pytest.mark.slow
def test_labkit_serve_is_quiet_and_serves_until_terminated(tmp_path):
    # GIVEN `labkit serve` on a port the system picks (a port found free and then released could be
    # taken by a parallel test before the server binds it), in its own process
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        listening = re.fullmatch(r"Local cloud listening on (http://127\.0\.0\.1:[1-9][0-9]*)\n", first)
        assert listening, first
        # WHEN a client builds and publishes through it
        endpoint = listening.group(1)
        config = Config.from_env({"AWS_ENDPOINT_URL": endpoint}, function_timeout=1, visibility_timeout=1)
        lab = Lab(config, Clients(config))
        lab.up()
        lab.publish_order()
        assert lab.wait_until_drained(timeout=20)["orders"] == 1
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    # THEN it stopped cleanly and wrote nothing to stderr (no request log, no warnings)
    assert process.returncode == 0
    assert err == ""


def test_serve_on_a_taken_port_says_so(capsys, local_server):
    from labkit.cli import main

    port = local_server.endpoint_url.rsplit(":", 1)[1]
    assert main(["serve", "--port", port]) == 2
    err = capsys.readouterr().err
    assert f"Cannot listen on 127.0.0.1:{port}" in err and "--port" in err


@pytest.mark.parametrize("body", [json.dumps({"orderId": "x"}), "{"])
def test_server_dlq_holds_what_the_handler_rejects(local_server, body):
    lab = client_lab(local_server)
    lab.up()
    started = time.monotonic()
    lab.publish_order(body)
    counts = lab.wait_until_drained(timeout=30)
    assert counts["dlq_visible"] == 1 and counts["orders"] == 0
    # Three receives one visibility timeout (1 s) apart, then the move on the next receive.
    assert time.monotonic() - started >= 2
    (message,) = lab.dlq_messages()
    assert json.loads(message["Body"])["Message"] == body
