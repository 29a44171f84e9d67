"""The Lambda service of the local cloud: pollers for every enabled SQS event source mapping.

Like AWS's pollers it reads the mappings through the Lambda API, receives up to BatchSize messages
(gathering for up to MaximumBatchingWindowInSeconds), drops those its FilterCriteria reject,
invokes the function with the rest as an SQS event (`sqsevent.py`), deletes what succeeded and
leaves the others to come back after the queue's visibility timeout, so the queue's redrive policy
moves a poison message to its DLQ:
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html

Each mapping runs several pollers at once, each invoking in its own execution environment, up to
the smallest of LOCAL_MAX_CONCURRENCY, the mapping's ScalingConfig.MaximumConcurrency and the
function's reserved concurrency. Pollers sleep until a message arrives, a hidden one comes back,
or a mapping changes (`signals.py`): idle, the service does no work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import paginate
from labkit.localcloud import signals
from labkit.localcloud.runtime import FunctionRuntime, Invocation
from labkit.localcloud.sqsevent import passes_filters, sqs_record
from labkit.session import Clients

log = logging.getLogger(__name__)

# Environments one mapping may run at once on this machine (AWS starts at five and scales to
# 1,250); each is a Python process of 40-90 MB. LABKIT_LOCAL_CONCURRENCY changes it.
LOCAL_MAX_CONCURRENCY = int(os.environ.get("LABKIT_LOCAL_CONCURRENCY", "4"))
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# One ReceiveMessage returns at most 10 messages; a larger batch is gathered over several.
RECEIVE_MAX = 10
# Lambda's payload limit for a synchronous invocation, which a batch must fit in.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Mapping states that change by themselves: the supervisor looks again shortly.
_TRANSITIONAL = ("Creating", "Enabling", "Updating", "Disabling", "Deleting")
_TRANSITION_CHECK_S = 0.05


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
        pollers_per_mapping: int | None = None,
    ) -> None:
        self._clients = clients
        self.runtime = runtime
        # None: as many as the mapping and the function allow, up to LOCAL_MAX_CONCURRENCY.
        self.pollers_per_mapping = pollers_per_mapping
        self._mappings: dict[str, dict[str, Any]] = {}
        self._workers: dict[str, list[_Worker]] = {}
        self._queue_urls: dict[str, str] = {}
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.last_error: dict[str, Any] | None = None
        self._transitional = False

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
        signals.notify()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        with self._lock:
            workers = [w for group in self._workers.values() for w in group]
            self._workers.clear()
        for worker in workers:
            worker.stop.set()
        signals.notify()
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout)

    def refresh(self) -> None:
        """Read the mappings from the Lambda API and start or stop pollers to match."""
        # One at a time: a refresh that read the mappings before a change must not apply them after it.
        with self._refresh_lock:
            self._refresh()

    def _refresh(self) -> None:
        listed = list(paginate(self._clients("lambda"), "list_event_source_mappings", "EventSourceMappings"))
        if listed:
            # Loaded while the mapping is made, so its first batch does not wait for the runtime.
            self.runtime.warm()
        self._transitional = any(m.get("State") in _TRANSITIONAL for m in listed)
        mappings = {
            m["UUID"]: m
            for m in listed
            if m.get("State") == "Enabled" and m.get("EventSourceArn", "").startswith("arn:aws:sqs:")
        }
        wanted = {uuid: self._concurrency(m) for uuid, m in mappings.items()}
        stopped: list[_Worker] = []
        with self._lock:
            self._mappings = mappings
            for uuid in list(self._workers):
                if uuid not in mappings:
                    stopped.extend(self._workers.pop(uuid))
            for uuid, count in wanted.items():
                group = self._workers.setdefault(uuid, [])
                while len(group) > count:
                    stopped.append(group.pop())
                while len(group) < count:
                    worker = _Worker(uuid)
                    worker.thread = threading.Thread(
                        target=self._poll_loop, args=(worker,), name=f"labkit-poller-{uuid[:8]}", daemon=True
                    )
                    group.append(worker)
                    worker.thread.start()
        for worker in stopped:
            worker.stop.set()
        if stopped:
            signals.notify()

    def _concurrency(self, mapping: dict[str, Any]) -> int:
        """How many environments may serve *mapping* at once."""
        if self.pollers_per_mapping is not None:
            return self.pollers_per_mapping
        limit = LOCAL_MAX_CONCURRENCY
        maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if maximum:
            limit = min(limit, int(maximum))
        try:
            reserved = self._clients("lambda").get_function_concurrency(FunctionName=mapping["FunctionArn"])
        except ClientError:
            reserved = {}
        if reserved.get("ReservedConcurrentExecutions") is not None:
            limit = min(limit, int(reserved["ReservedConcurrentExecutions"]))
        return max(0, limit)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            seen = signals.generation()
            try:
                self.refresh()
            except Exception as exc:
                log.debug("refreshing mappings failed: %s", exc)
            # A mapping on its way to Enabled is looked at again shortly; otherwise only a change wakes us.
            signals.wait(seen, _TRANSITION_CHECK_S if self._transitional else None)

    def _poll_loop(self, worker: _Worker) -> None:
        while not worker.stop.is_set() and not self._stop.is_set():
            seen = signals.generation()
            with self._lock:
                mapping = self._mappings.get(worker.mapping_uuid)
            if mapping is None:
                return
            try:
                handled = self.poll_once(mapping)
            except Exception as exc:
                self._count("poll_errors")
                self.last_error = {"mapping": worker.mapping_uuid, "error": repr(exc)}
                log.debug("poll of %s failed: %s", worker.mapping_uuid, exc)
                handled = 0
            if not handled and not worker.stop.is_set():
                signals.wait(seen, signals.next_visible_in(mapping["EventSourceArn"], time.time() * 1000))

    def _count(self, name: str, amount: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += amount

    def poll_once(self, mapping: dict[str, Any]) -> int:
        """Receive one batch for *mapping*, invoke the function, delete what succeeded; returns the batch size."""
        url = self._queue_url(mapping["EventSourceArn"])
        messages = self._gather(url, mapping)
        if not messages:
            return 0
        wanted = [m for m in messages if passes_filters(m, mapping)]
        # Lambda deletes the messages its filter rejects: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html
        rejected = [m for m in messages if m not in wanted]
        if rejected:
            self._delete(url, rejected)
            self._count("filtered", len(rejected))
        if not wanted:
            return len(messages)
        event = {"Records": [sqs_record(m, mapping["EventSourceArn"]) for m in wanted]}
        result = self.runtime.invoke(mapping["FunctionArn"], event)
        self._count("invocations")
        self._count("records", len(wanted))
        failed = self._failed_ids(result, mapping, wanted)
        done = [m for m in wanted if m["MessageId"] not in failed]
        if done:
            self._delete(url, done)
        self._count("deleted", len(done))
        self._count("retried", len(wanted) - len(done))
        return len(messages)

    def _gather(self, url: str, mapping: dict[str, Any]) -> list[dict[str, Any]]:
        """Up to BatchSize messages, waiting up to the batching window for more once the first arrived."""
        batch_size = int(mapping.get("BatchSize") or 10)
        window = float(mapping.get("MaximumBatchingWindowInSeconds") or 0)
        sqs = self._clients("sqs")
        messages: list[dict[str, Any]] = []
        size = 0
        deadline: float | None = None
        while len(messages) < batch_size:
            seen = signals.generation()
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(RECEIVE_MAX, batch_size - len(messages)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            messages.extend(received)
            size += sum(len(m.get("Body", "")) for m in received)
            # Without a window a batch is what one receive returns, as AWS's poller does.
            if not window or not messages or size >= MAX_PAYLOAD_BYTES or self._stop.is_set():
                break
            now = time.monotonic()
            deadline = now + window if deadline is None else deadline
            if now >= deadline:
                break
            if not received:
                signals.wait(seen, deadline - now)
        return messages

    def _failed_ids(self, result: Invocation, mapping: dict[str, Any], messages: list[dict[str, Any]]) -> set[str]:
        every = {m["MessageId"] for m in messages}
        if result.error is not None:
            self._count("errors")
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
        for start in range(0, len(entries), RECEIVE_MAX):
            reply = self._clients("sqs").delete_message_batch(
                QueueUrl=url, Entries=entries[start : start + RECEIVE_MAX]
            )
            if reply.get("Failed"):
                log.debug("delete failed for %s", reply["Failed"])

    def _queue_url(self, queue_arn: str) -> str:
        url = self._queue_urls.get(queue_arn)
        if url is None:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            url = self._clients("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._queue_urls[queue_arn] = url
        return url
