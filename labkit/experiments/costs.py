"""What orders cost on AWS at a trigger batch size of 1 or 10: a small model over dated list prices.

Prices live in one file, `labkit/data/prices.json` (region, the date they were read, the pages they
were read from). Everything else here is arithmetic over a `Workload` of stated assumptions, so a
notebook can change an assumption and see the bill move:

- SNS: one publish request per PublishBatch of up to 10 orders (per 64 KB chunk); deliveries to SQS.
- SQS: one SendMessage per delivery from SNS, and per Lambda batch one ReceiveMessage and one
  DeleteMessageBatch, each billed per 64 KB chunk of payload.
- Lambda: one request per invocation, and GB-seconds of duration rounded up to the millisecond.
- DynamoDB on-demand: write request units, one per KB (rounded up) of each order written.

Left out, and said so in `NOT_MODELLED`: the free tier, empty receives while the queue is idle,
retries of failed orders, CloudWatch Logs, data transfer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

MILLION = 1_000_000
CHUNK_BYTES = 64 * 1024
PRICE_KEYS = (
    "lambda_request",
    "lambda_gb_second",
    "sqs_request",
    "sns_publish",
    "sns_sqs_delivery",
    "dynamodb_write_request_unit",
)
NOT_MODELLED = (
    "free tier",
    "empty receives while the queue is idle (Lambda keeps polling)",
    "retries of failed orders and the DLQ",
    "CloudWatch Logs ingestion and storage",
    "data transfer",
)
SERVICE_COLORS = {"SNS": "#d6336c", "SQS": "#f08c00", "Lambda": "#7048e8", "DynamoDB": "#1971c2"}


@dataclass(frozen=True)
class Price:
    """One unit price: *usd* per *per* units of *unit*."""

    usd: float
    per: int
    unit: str
    sources: tuple[str, ...]

    def cost(self, quantity: float) -> float:
        """The price of *quantity* units, in USD."""
        return quantity * self.usd / self.per


@dataclass(frozen=True)
class Prices:
    """The price list: region, the date it was read, and one Price per line item."""

    region: str
    currency: str
    as_of: date
    items: dict[str, Price]

    def __getitem__(self, key: str) -> Price:
        return self.items[key]


@dataclass(frozen=True)
class Workload:
    """Assumptions about the orders and the function; change them to see the bill move."""

    # One order as JSON, and wrapped in the SNS envelope SQS delivers (both measured on the local cloud).
    order_bytes: int = 127
    envelope_bytes: int = 1045
    # Orders per PublishBatch call (labkit publishes ten at a time; 1 would be one Publish per order).
    publish_batch: int = 10
    memory_mb: int = 128
    # Lambda duration: a fixed part per invocation plus one DynamoDB write per record. Assumed, typical of
    # a small Python handler writing to DynamoDB in the same region; not measured on AWS.
    invocation_ms: float = 3.0
    record_ms: float = 6.0
    # The stored item, about the size of the order.
    item_bytes: int = 130


def load_prices(path: Path | str | None = None) -> Prices:
    """Read the price list (default: the one shipped in `labkit/data/prices.json`).

    Raises:
        ConfigError: the file is missing, is not JSON, or lacks a price the model needs.
    """
    source = Path(path) if path is not None else resources.files("labkit") / "data" / "prices.json"
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"No price list at {source}: restore labkit/data/prices.json.") from exc
    except ValueError as exc:
        raise ConfigError(f"The price list {source} is not valid JSON: {exc}.") from exc
    try:
        items = {
            key: Price(
                usd=float(raw["prices"][key]["usd"]),
                per=int(raw["prices"][key]["per"]),
                unit=str(raw["prices"][key]["unit"]),
                sources=tuple(s["url"] for s in raw["prices"][key]["sources"]),
            )
            for key in PRICE_KEYS
        }
        return Prices(
            region=str(raw["region"]),
            currency=str(raw["currency"]),
            as_of=date.fromisoformat(raw["as_of"]),
            items=items,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"The price list {source} lacks or garbles {exc}: every price needs usd, per, unit and sources, "
            "and the file needs region, currency and as_of (YYYY-MM-DD)."
        ) from exc


def cost_breakdown(
    orders: int = MILLION, batch_size: int = 1, prices: Prices | None = None, workload: Workload | None = None
) -> pd.DataFrame:
    """One row per billed line item for *orders* orders at one trigger batch size: quantity, price, USD."""
    import pandas as pd

    _check(orders, [batch_size])
    prices = prices or load_prices()
    w = workload or Workload()
    if not 1 <= w.publish_batch <= 10 or w.memory_mb < 128 or min(w.order_bytes, w.envelope_bytes, w.item_bytes) < 1:
        raise InputError(
            f"Workload {w} is out of range: publish_batch is 1 to 10, memory_mb at least 128, sizes at least 1 byte."
        )
    publishes = math.ceil(orders / w.publish_batch) * _chunks(w.publish_batch * w.order_bytes)
    invocations = math.ceil(orders / batch_size)
    batch_chunks = _chunks(batch_size * w.envelope_bytes)
    billed_ms = math.ceil(w.invocation_ms + w.record_ms * batch_size)
    gb_seconds = invocations * billed_ms / 1000 * w.memory_mb / 1024
    rows = [
        ("SNS", "publish requests", publishes, "sns_publish"),
        ("SNS", "deliveries to SQS", orders, "sns_sqs_delivery"),
        ("SQS", "SendMessage from SNS", orders * _chunks(w.envelope_bytes), "sqs_request"),
        ("SQS", "ReceiveMessage by Lambda", invocations * batch_chunks, "sqs_request"),
        ("SQS", "DeleteMessageBatch by Lambda", invocations, "sqs_request"),
        ("Lambda", "requests", invocations, "lambda_request"),
        ("Lambda", "duration (GB-seconds)", gb_seconds, "lambda_gb_second"),
        ("DynamoDB", "write request units", orders * math.ceil(w.item_bytes / 1024), "dynamodb_write_request_unit"),
    ]
    return pd.DataFrame(
        [
            {
                "batch_size": batch_size,
                "service": service,
                "item": item,
                "quantity": quantity,
                "usd_per_unit": prices[key].usd / prices[key].per,
                "usd": prices[key].cost(quantity),
            }
            for service, item, quantity, key in rows
        ]
    )


def cost_table(
    orders: int = MILLION,
    batch_sizes: tuple[int, ...] = (1, 10),
    prices: Prices | None = None,
    workload: Workload | None = None,
) -> pd.DataFrame:
    """USD per line item (rows) and batch size (columns) for *orders* orders, with a total row."""
    import pandas as pd

    _check(orders, batch_sizes)
    prices = prices or load_prices()
    tidy = pd.concat([cost_breakdown(orders, b, prices, workload) for b in batch_sizes], ignore_index=True)
    table = tidy.pivot_table(index=["service", "item"], columns="batch_size", values="usd", sort=False, aggfunc="sum")
    table.columns = [f"batch size {b}" for b in table.columns]
    table.loc[("Total", ""), :] = table.sum()
    table.attrs.update(orders=orders, region=prices.region, as_of=prices.as_of.isoformat())
    return table.round(4)


def cost_chart(
    orders: int = MILLION,
    batch_sizes: tuple[int, ...] = (1, 10),
    prices: Prices | None = None,
    workload: Workload | None = None,
) -> Figure:
    """A stacked bar per batch size: what *orders* orders cost, split by service."""
    from matplotlib.figure import Figure

    _check(orders, batch_sizes)
    prices = prices or load_prices()
    table = cost_table(orders, batch_sizes, prices, workload).drop(index="Total", level="service")
    by_service = table.groupby(level="service", sort=False).sum()
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    labels = list(by_service.columns)
    bottom = [0.0] * len(labels)
    for service, row in by_service.iterrows():
        values = [float(v) for v in row]
        ax.bar(labels, values, bottom=bottom, label=str(service), color=SERVICE_COLORS.get(str(service)))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, total in enumerate(bottom):
        ax.annotate(f"${total:.2f}", (x, total), ha="center", va="bottom")
    ax.set_ylabel(f"{prices.currency} per {orders:,} orders")
    ax.set_title(f"{prices.region} list prices as of {prices.as_of.isoformat()}")
    ax.set_ylim(0, max(bottom) * 1.15 if max(bottom) > 0 else 1)
    ax.legend(loc="upper right")
    return fig


def describe(prices: Prices | None = None) -> dict[str, Any]:
    """The price list as plain data, with its sources and what the model leaves out."""
    prices = prices or load_prices()
    return {
        "region": prices.region,
        "as_of": prices.as_of.isoformat(),
        "currency": prices.currency,
        "prices": {
            k: {"usd": p.usd, "per": p.per, "unit": p.unit, "sources": list(p.sources)} for k, p in prices.items.items()
        },
        "not_modelled": list(NOT_MODELLED),
    }


def _chunks(payload_bytes: int) -> int:
    """Billed requests for one call carrying *payload_bytes*: one per started 64 KB."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


def _check(orders: int, batch_sizes: Any) -> None:
    if not isinstance(orders, int) or orders < 1:
        raise InputError(f"Give a whole number of orders, at least 1 (got {orders!r}).")
    bad = [b for b in batch_sizes if not isinstance(b, int) or not 1 <= b <= 10]
    if bad or not batch_sizes:
        raise InputError(f"Batch sizes must be 1 to 10, as an SQS trigger takes (got {list(batch_sizes)!r}).")
