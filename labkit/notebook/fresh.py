"""Start a notebook once the order queue has settled, and say what earlier runs left in the DLQ (kept there).

Nothing a student sent is deleted: a DLQ exists to keep the orders that failed, and `labkit redrive`
brings them back once the handler takes them. A notebook that shows its own failed order follows it
by id (its journey) and moves only that message back (`lab.redrive(only=...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.errors import ResourceError
from labkit.notebook.display import Note
from labkit.notebook.runchecks import DLQ_AT_START
from labkit.resources import sqs

if TYPE_CHECKING:
    from labkit.lab import Lab

# Enough for a message an earlier notebook left failing (12 s visibility timeout) to finish its retries.
SETTLE_TIMEOUT_S = 120.0


def start_clean(lab: Lab, timeout: float = SETTLE_TIMEOUT_S) -> Note:
    """Wait until the order queue is empty, then say how many messages earlier runs left in the DLQ; deletes nothing.

    The queue drains on its own (each message is stored or moves to the DLQ), so what this notebook
    sends next is alone in it. The DLQ keeps what it holds: this run's message is told apart by its id.
    """
    config = lab.config
    lab.wait_until_drained(timeout=timeout)
    dlq = sqs.get_queue(lab.clients, config.dlq_name)
    if dlq is None:
        raise ResourceError(f"The DLQ {config.dlq_name} does not exist yet: run the catch-up cell.")
    kept = sum(sqs.get_queue_counts(lab.clients, dlq.url).values())
    # What was there before this run: its exercise check makes sure the student's redrive left these alone.
    lab.session[DLQ_AT_START] = kept
    if kept:
        return Note(
            f"{config.queue_name} is empty. {config.dlq_name} holds {kept} message(s) that earlier runs left there: "
            "they stay, as failed orders should. This notebook follows its own message by id; once your handler "
            "takes the earlier ones, `labkit redrive` (or lab.redrive()) sends them back."
        )
    return Note(f"{config.queue_name} and {config.dlq_name} are empty: nothing left by earlier runs.")
