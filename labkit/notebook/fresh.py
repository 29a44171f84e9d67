"""Start a notebook from an empty queue and DLQ, so what it shows is this run's messages only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.errors import ResourceError
from labkit.notebook.display import Note
from labkit.resources import sqs

if TYPE_CHECKING:
    from labkit.lab import Lab

# Enough for a message an earlier notebook left failing (12 s visibility timeout) to finish its retries.
SETTLE_TIMEOUT_S = 120.0


def start_clean(lab: Lab, timeout: float = SETTLE_TIMEOUT_S) -> Note:
    """Wait until the queue is empty, then delete what earlier runs left in the DLQ; says what it did.

    The queue drains on its own (each message is stored or moves to the DLQ); the DLQ keeps
    messages for days, so a later count, chart or redrive would mix them with this run's.
    """
    config = lab.config
    lab.wait_until_drained(timeout=timeout)
    dlq = sqs.get_queue(lab.clients, config.dlq_name)
    if dlq is None:
        raise ResourceError(f"The DLQ {config.dlq_name} does not exist yet: run the catch-up cell.")
    client = lab.clients("sqs")
    removed = 0
    while True:
        batch = client.receive_message(QueueUrl=dlq.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
        client.delete_message_batch(QueueUrl=dlq.url, Entries=entries)
        removed += len(batch)
    if removed:
        return Note(
            f"{config.queue_name} is empty; deleted {removed} message(s) that earlier runs left in {config.dlq_name}, "
            "so this notebook shows its own messages only."
        )
    return Note(f"{config.queue_name} and {config.dlq_name} are empty: nothing left by earlier runs.")
