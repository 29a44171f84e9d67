"""Orders to publish: the seed's sample, generated orders for load, and the schema the handler enforces."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

# The order of the assignment's test step.
SAMPLE_ORDER: dict[str, Any] = {
    "orderId": "01234",
    "userId": "U123",
    "itemName": "Laptop",
    "quantity": 1,
    "status": "new",
    "timestamp": "2025-05-03T12:00:00Z",
}

# Deliberately not an order: no JSON at all. The handler rejects it, and after three receives the
# queue moves it to the DLQ.
MALFORMED_BODY = "this is not an order {"

ITEMS = ("Laptop", "Phone", "Headphones", "Monitor", "Keyboard", "Mouse", "Webcam", "Charger")
STATUSES = ("new", "paid", "shipped", "delivered")


def sample_order(**changes: Any) -> dict[str, Any]:
    """A copy of the seed's sample order, with optional fields changed."""
    order = dict(SAMPLE_ORDER)
    order.update(changes)
    return order


def make_order(order_id: str, user_id: str, item: str, quantity: int, status: str = "new") -> dict[str, Any]:
    """An order stamped with the current UTC time."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "orderId": order_id,
        "userId": user_id,
        "itemName": item,
        "quantity": quantity,
        "status": status,
        "timestamp": stamp,
    }


def generate_orders(count: int, seed: int = 7, prefix: str = "ORD") -> Iterator[dict[str, Any]]:
    """*count* distinct, valid, reproducible orders (for load and charts)."""
    rng = random.Random(seed)
    start = datetime(2025, 5, 3, 12, 0, tzinfo=UTC)
    for n in range(count):
        stamp = start + timedelta(seconds=n)
        yield {
            "orderId": f"{prefix}-{n:06d}",
            "userId": f"U{rng.randint(100, 999)}",
            "itemName": rng.choice(ITEMS),
            "quantity": rng.randint(1, 5),
            "status": rng.choice(STATUSES),
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
