"""The Lambda service of the local cloud: pollers for every enabled SQS event source mapping.

Like AWS's pollers it reads the mappings through the Lambda API, receives up to BatchSize messages,
invokes the function synchronously, deletes what succeeded and leaves the rest to come back after
the queue's visibility timeout, so the queue's redrive policy moves a poison message to its DLQ.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from labkit.aws import paginate
from labkit.localcloud.runtime import FunctionRuntime, Invocation
from labkit.session import Clients

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
REFRESH_INTERVAL_S = 0.25
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


@dataclass
class _Worker:
    mapping_uuid: str
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class LambdaService:
    """Polls SQS for every enabled mapping, in background threads, until stopped."""

    def __init__(
        self,
        clients: Clients,
        runtime: FunctionRuntime,
        pollers_per_mapping: int = 1,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        self._clients = clients
        self.runtime = runtime
        self.pollers_per_mapping = pollers_per_mapping
        self.poll_interval = poll_interval
        self._mappings: dict[str, dict[str, Any]] = {}
        self._workers: dict[str, list[_Worker]] = {}
        self._queue_urls: dict[str, str] = {}
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.last_error: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        """True while the service polls."""
        return self._supervisor is not None and self._supervisor.is_alive()

    def start(self) -> None:
        """Start polling in the background; idempotent."""
        if self.running:
            return
        self._stop.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="labkit-lambda-service", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every poller and wait for in-flight invocations to finish."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        with self._lock:
            workers = [w for group in self._workers.values() for w in group]
            self._workers.clear()
        for worker in workers:
            worker.stop.set()
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout)

    def refresh(self) -> None:
        """Read the mappings from the Lambda API and start or stop pollers to match."""
        # One at a time: a refresh that read the mappings before a change must not apply them after it.
        with self._refresh_lock:
            self._refresh()

    def _refresh(self) -> None:
        mappings = {
            m["UUID"]: m
            for m in paginate(self._clients("lambda"), "list_event_source_mappings", "EventSourceMappings")
            if m.get("State") == "Enabled" and m.get("EventSourceArn", "").startswith("arn:aws:sqs:")
        }
        with self._lock:
            self._mappings = mappings
            for uuid in list(self._workers):
                if uuid not in mappings:
                    for worker in self._workers.pop(uuid):
                        worker.stop.set()
            for uuid in mappings:
                group = self._workers.setdefault(uuid, [])
                while len(group) < self.pollers_per_mapping:
                    worker = _Worker(uuid)
                    worker.thread = threading.Thread(
                        target=self._poll_loop, args=(worker,), name=f"labkit-poller-{uuid[:8]}", daemon=True
                    )
                    group.append(worker)
                    worker.thread.start()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:
                log.debug("refreshing mappings failed: %s", exc)
            self._stop.wait(REFRESH_INTERVAL_S)

    def _poll_loop(self, worker: _Worker) -> None:
        while not worker.stop.is_set() and not self._stop.is_set():
            with self._lock:
                mapping = self._mappings.get(worker.mapping_uuid)
            if mapping is None:
                return
            try:
                handled = self.poll_once(mapping)
            except Exception as exc:
                self.stats["poll_errors"] += 1
                self.last_error = {"mapping": worker.mapping_uuid, "error": repr(exc)}
                log.debug("poll of %s failed: %s", worker.mapping_uuid, exc)
                handled = 0
            if not handled:
                worker.stop.wait(self.poll_interval)

    def poll_once(self, mapping: dict[str, Any]) -> int:
        """Receive one batch for *mapping*, invoke the function, delete what succeeded; returns the batch size."""
        url = self._queue_url(mapping["EventSourceArn"])
        sqs = self._clients("sqs")
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=int(mapping.get("BatchSize", 10)),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, mapping["EventSourceArn"]) for m in messages]}
        result = self.runtime.invoke(mapping["FunctionArn"], event)
        self.stats["invocations"] += 1
        self.stats["records"] += len(messages)
        failed = self._failed_ids(result, mapping, messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._delete(url, done)
        self.stats["deleted"] += len(done)
        self.stats["retried"] += len(messages) - len(done)
        return len(messages)

    def _failed_ids(self, result: Invocation, mapping: dict[str, Any], messages: list[dict[str, Any]]) -> set[str]:
        every = {m["MessageId"] for m in messages}
        if result.error is not None:
            self.stats["errors"] += 1
            self.last_error = {"function": mapping["FunctionArn"], **result.error}
            return every
        if REPORT_BATCH_ITEM_FAILURES not in (mapping.get("FunctionResponseTypes") or []):
            return set()
        reply = result.payload
        if reply is None or (isinstance(reply, dict) and not reply.get("batchItemFailures")):
            return set()
        # As documented: a reply Lambda cannot read, or naming a message not in the batch, fails the whole batch.
        if not isinstance(reply, dict) or not isinstance(reply.get("batchItemFailures"), list):
            return every
        failed = set()
        for item in reply["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in every:
                return every
            failed.add(identifier)
        return failed

    def _delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        reply = self._clients("sqs").delete_message_batch(QueueUrl=url, Entries=entries)
        if reply.get("Failed"):
            log.debug("delete failed for %s", reply["Failed"])

    def _queue_url(self, queue_arn: str) -> str:
        url = self._queue_urls.get(queue_arn)
        if url is None:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            url = self._clients("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._queue_urls[queue_arn] = url
        return url


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda passes to a function, built from a ReceiveMessage reply."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: attributes[key]
            for key in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
                "AWSTraceHeader",
                "SequenceNumber",
                "MessageGroupId",
                "MessageDeduplicationId",
            )
            if key in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def invoke_result_for_api(result: Invocation) -> tuple[str, bool, str]:
    """The (payload, errored, logs) triple moto's Invoke API expects from a run."""
    if result.error is not None:
        return json.dumps(result.error), True, result.logs
    return json.dumps(result.payload), False, result.logs
