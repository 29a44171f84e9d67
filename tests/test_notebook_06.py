"""Notebook 06 keeps what it did not send: failed orders already in the DLQ survive it and can still be redriven.

A dead-letter queue keeps the messages a consumer could not process until someone moves them back
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html);
a lab that deleted them would teach the opposite.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from labkit import events
from labkit.cli import main
from labkit.lab import Lab

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_handle_failures.ipynb"
# A handler that fails on every record, as a student's broken draft does.
BROKEN = "def lambda_handler(event, context):\n    raise RuntimeError('not finished yet')\n"


@pytest.mark.slow
def test_five_failed_orders_survive_notebook_06_and_are_redriven_after(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN five good orders that a broken handler failed three times each, now in the DLQ of a served cloud
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_server.endpoint_url)
    lab = Lab(local_server.config.with_(backend="endpoint", endpoint_url=local_server.endpoint_url))
    lab.up()
    lab.ensure_function(source=BROKEN)
    orders = [events.fresh_order("EARLY") for _ in range(5)]
    lab.publish_orders(orders)
    deadline = time.monotonic() + 60
    while lab.counts()["dlq_visible"] != 5:
        assert time.monotonic() < deadline, f"the five orders did not reach the DLQ: {lab.counts()}"
        time.sleep(0.5)

    # WHEN the student runs notebook 06 against that cloud (its catch-up deploys the fixed handler)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {**os.environ, "AWS_ENDPOINT_URL": local_server.endpoint_url}
    client = NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)

    # THEN it said the five were kept, and its own order was redriven alone
    said = "".join(
        o.get("data", {}).get("text/plain", "") for c in notebook.cells if "start_clean" in c.source for o in c.outputs
    )
    assert "holds 5 message(s) that earlier runs left there" in said
    assert lab.counts()["dlq_visible"] == 5
    # AND `labkit redrive` brings back all five, and the fixed handler stores them
    capsys.readouterr()
    assert main(["redrive"]) == 0
    assert capsys.readouterr().out.strip() == "moved 5 message(s) from the DLQ back to the order queue"
    lab.wait_until_drained(timeout=30)
    assert all(lab.get_order(order["orderId"]) is not None for order in orders)
    assert lab.counts()["dlq_visible"] == 0
