"""What a notebook shows of a resource the student just built, read back through the AWS API.

These cells follow an exercise, so they say plainly when its resource is not there yet instead of
raising: in a notebook whose exercise is still to do, every other cell runs.
"""

from __future__ import annotations

import json

from labkit.lab import Lab
from labkit.notebook.display import CodeBlock, Note, show_json
from labkit.resources import sqs

SHOWN_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "Policy")


def queue_settings(lab: Lab) -> CodeBlock | Note:
    """The order queue's attributes that step 3 decides (redrive policy, access policy, timeouts), as JSON."""
    queue = sqs.get_queue(lab.clients, lab.config.queue_name)
    if queue is None:
        return Note(f"Queue {lab.config.queue_name} does not exist yet: do the exercise above, then run this cell.")
    attributes = lab.clients("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])["Attributes"]
    shown = {}
    for name in SHOWN_QUEUE_ATTRIBUTES:
        if name in attributes:
            value = attributes[name]
            shown[name] = json.loads(value) if name in ("RedrivePolicy", "Policy") else value
    return show_json(shown)
