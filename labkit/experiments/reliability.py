"""Conservation: publish a mixed load, drain, and count what was stored, dead-lettered, lost or duplicated.

The load mixes valid orders, malformed bodies, exact duplicates and status updates of the same
orderId published out of order (an older timestamp after a newer one). After the queue drains the
table must hold every valid orderId at its newest version and the DLQ exactly the malformed bodies.
`python -m labkit.experiments` runs it on an in-process local cloud and prints the figures.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from labkit.observe.deliveries import deliveries, needless_retries
from labkit.observe.dlq import scan_dlq
from labkit.orders import STATUSES, generate_orders

if TYPE_CHECKING:
    from labkit.lab import Lab

DLQ_SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class MixedLoad:
    """Message bodies in publish order, and what the pipeline must end with."""

    bodies: tuple[str, ...]
    expected: dict[str, dict[str, Any]]
    malformed: tuple[str, ...]
    updated: tuple[str, ...]
    duplicates: int
    out_of_order: int


@dataclass(frozen=True)
class Figures:
    """What went in and where it ended; `ok` when nothing was lost, duplicated, stale or stored wrongly."""

    published: int
    valid_orders: int
    malformed: int
    stored: int
    dlq: int
    lost: int
    duplicated: int
    valid_in_dlq: int
    stale: int
    invalid_stored: int
    left_in_queue: int
    needless_retries: int | None
    details: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the table and DLQ hold exactly what they should and nothing was retried needlessly."""
        bad = (
            self.lost,
            self.duplicated,
            self.valid_in_dlq,
            self.stale,
            self.invalid_stored,
            self.left_in_queue,
            self.needless_retries or 0,
        )
        return not any(bad) and self.stored == self.valid_orders and self.dlq == self.malformed

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values, with `ok`."""
        return {**asdict(self), "ok": self.ok}


def epoch_micros(text: str) -> int:
    """An ISO 8601 timestamp as the handler's timestampMicros: microseconds since 1970 UTC (no offset: UTC)."""
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def stored_form(order: dict[str, Any]) -> dict[str, Any]:
    """The item the handler stores for a valid *order* (its six attributes as published), as `Lab.order_items()`
    returns it."""
    item = {key: order[key] for key in ("orderId", "userId", "itemName", "quantity", "status", "timestamp")}
    return {**item, "timestampMicros": epoch_micros(order["timestamp"])}


def malformed_bodies(count: int, prefix: str = "BAD") -> list[str]:
    """*count* distinct bodies the handler must reject, cycling through every kind of bad input."""
    good = {"userId": "U1", "itemName": "Pen", "quantity": 1, "status": "new", "timestamp": "2025-05-03T12:00:00Z"}
    envelope = {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123456789012:Other", "Message": "{}"}
    kinds = [
        lambda n: f"not an order {{ {prefix}-{n}",
        lambda n: json.dumps([prefix, n]),
        lambda n: json.dumps({"orderId": f"{prefix}-{n}"}),
        lambda n: json.dumps({**good, "orderId": f"{prefix}-{n}", "quantity": "2"}),
        lambda n: json.dumps({**good, "orderId": f"{prefix}-{n}", "quantity": 1.5}),
        lambda n: json.dumps({**good, "orderId": f"{prefix}-{n}", "quantity": True}),
        lambda n: json.dumps({**good, "orderId": f"{prefix}-{n}", "timestamp": "yesterday"}),
        lambda n: json.dumps({**good, "orderId": "   ", "userId": f"{prefix}-{n}"}),
        lambda n: json.dumps({**good, "orderId": f"{prefix}-{n}", "itemName": "x" * 300}),
        lambda n: json.dumps({**envelope, "Message": json.dumps({**good, "orderId": f"{prefix}-{n}"})}),
    ]
    return [kinds[n % len(kinds)](n) for n in range(count)]


def mixed_load(
    orders: int = 40, updates: int = 10, duplicates: int = 10, malformed: int = 10, seed: int = 7, prefix: str = "REL"
) -> MixedLoad:
    """A reproducible mixed load: *orders* valid orders, *updates* of them with two newer versions each
    (the newest published first), *duplicates* exact re-publications and *malformed* bad bodies."""
    rng = random.Random(seed)
    versions: dict[str, list[dict[str, Any]]] = {}
    for order in generate_orders(orders, seed=seed, prefix=prefix):
        versions[order["orderId"]] = [order]
    updated = tuple(sorted(rng.sample(sorted(versions), min(updates, orders))))
    for order_id in updated:
        first = versions[order_id][0]
        start = datetime.fromisoformat(first["timestamp"])
        for step in (1, 2):
            later = start + timedelta(minutes=step)
            status = STATUSES[min(step + 1, len(STATUSES) - 1)]
            versions[order_id].append({**first, "status": status, "timestamp": later.strftime("%Y-%m-%dT%H:%M:%SZ")})
    bad = malformed_bodies(malformed, prefix=f"{prefix}-BAD")
    entries = [(order_id, json.dumps(v)) for order_id, vs in versions.items() for v in vs] + [(None, b) for b in bad]
    copies = [rng.choice(entries) for _ in range(duplicates)]
    entries += copies
    rng.shuffle(entries)
    # Put each updated order's newest version first among its slots, the older ones after it.
    out_of_order = 0
    for order_id, vs in versions.items():
        if len(vs) < 2:
            continue
        slots = [i for i, (oid, _) in enumerate(entries) if oid == order_id]
        bodies = sorted((b for i, (_, b) in enumerate(entries) if i in slots), key=lambda b: json.loads(b)["timestamp"])
        ordered = [bodies[-1], *rng.sample(bodies[:-1], len(bodies) - 1)]
        for slot, body in zip(slots, ordered, strict=True):
            entries[slot] = (order_id, body)
        out_of_order += len(ordered) - 1
    malformed_sent = tuple(body for order_id, body in entries if order_id is None)
    expected = {order_id: stored_form(max(vs, key=lambda v: v["timestamp"])) for order_id, vs in versions.items()}
    return MixedLoad(
        bodies=tuple(body for _, body in entries),
        expected=expected,
        malformed=malformed_sent,
        updated=updated,
        duplicates=duplicates,
        out_of_order=out_of_order,
    )


def dlq_bodies(lab: Lab) -> list[str]:
    """The published body of every DLQ message (unwrapped from its SNS envelope), left in the DLQ."""
    bodies = []
    for message in scan_dlq(lab, limit=DLQ_SCAN_LIMIT):
        body = message["Body"]
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        is_envelope = isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "TopicArn" in envelope
        bodies.append(envelope["Message"] if is_envelope else body)
    return bodies


def measure(lab: Lab, load: MixedLoad, since: float | None = None, check_retries: bool = True) -> Figures:
    """Compare the table, the DLQ and the queue with what *load* must have produced."""
    items = {item["orderId"]: item for item in lab.order_items()}
    missing = sorted(set(load.expected) - set(items))
    stale = sorted(oid for oid in load.expected if oid in items and items[oid] != load.expected[oid])
    invalid = sorted(set(items) - set(load.expected))
    in_dlq = Counter(dlq_bodies(lab))
    wanted = Counter(load.malformed)
    not_in_dlq = wanted - in_dlq
    extra_in_dlq = in_dlq - wanted
    # A valid order in the DLQ failed every try for a reason outside it (a fault); once redriven it lands.
    valid_in_dlq = Counter(
        {body: n for body, n in extra_in_dlq.items() if body not in wanted and _is_valid(body, load)}
    )
    counts = lab.counts()
    left = (counts.get("queue_visible") or 0) + (counts.get("queue_in_flight") or 0)
    # Not checked where whole batches are retried by design (a crash) or by concurrency (pollers).
    retried = needless_retries(deliveries(lab, since)) if check_retries else None
    return Figures(
        published=len(load.bodies),
        valid_orders=len(load.expected),
        malformed=len(load.malformed),
        stored=len(items),
        dlq=sum(in_dlq.values()),
        lost=len(missing) + sum(not_in_dlq.values()),
        duplicated=sum((extra_in_dlq - valid_in_dlq).values()),
        valid_in_dlq=sum(valid_in_dlq.values()),
        stale=len(stale),
        invalid_stored=len(invalid),
        left_in_queue=left,
        needless_retries=None if retried is None else len(retried),
        details={
            "missing_orders": missing,
            "stale_orders": stale,
            "invalid_stored": invalid,
            "malformed_not_in_dlq": sorted(not_in_dlq),
            "unexpected_in_dlq": sorted(extra_in_dlq),
            "retried_after_success": sorted(retried or []),
        },
    )


def _is_valid(body: str, load: MixedLoad) -> bool:
    try:
        order = json.loads(body)
    except ValueError:
        return False
    return isinstance(order, dict) and order.get("orderId") in load.expected and body in load.bodies


def run(lab: Lab, load: MixedLoad, timeout: float = 120, check_retries: bool = True) -> Figures:
    """Publish *load* through the topic, wait for the queue to drain, and measure."""
    started = time.time()
    lab.publish_orders(load.bodies)
    lab.wait_until_drained(timeout=timeout)
    return measure(lab, load, since=started, check_retries=check_retries)
