"""Tables and charts of the pipeline: stored orders, queue and DLQ counts over time, the DLQ's messages.

Charts are matplotlib Figures, closed before they are returned, so a notebook shows each one once
(as the cell's value) and a script can save it; nothing here calls `plt.show()`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit.lab import Lab
from labkit.observe import logs
from labkit.observe.dlq import decode_body, scan_dlq, sent_at
from labkit.observe.journey import Journey
from labkit.resources import dynamodb, sqs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COUNT_COLUMNS = ("orders", "queue_visible", "queue_in_flight", "dlq_visible", "dlq_in_flight")
LINES = (("queue_visible", "queue: visible"), ("queue_in_flight", "queue: in flight"), ("dlq_visible", "DLQ: visible"))
SAMPLE_S = 0.5


def _pyplot() -> Any:
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Figure) -> Figure:
    """Lay out a figure and close it in pyplot, so a notebook shows it once, as the cell's value."""
    fig.tight_layout()
    # Closed, so the inline backend does not draw it a second time at the end of the cell.
    _pyplot().close(fig)
    return fig


def orders_chart(frame: pd.DataFrame, title: str = "Stored orders") -> Figure:
    """Two bar charts of stored orders: how many per status and how many per item."""
    fig, (by_status, by_item) = _pyplot().subplots(1, 2, figsize=(10, 3.6))
    for ax, column, label in ((by_status, "status", "by status"), (by_item, "itemName", "by item")):
        counts = frame[column].value_counts().sort_index() if column in frame and len(frame) else pd.Series()
        ax.bar([str(k) for k in counts.index], counts.to_numpy(), color="#4C72B0")
        ax.set_title(f"{title} {label}")
        ax.set_ylabel("orders")
        ax.tick_params(axis="x", rotation=30)
    return finish(fig)


class _Counts:
    """Reads `lab.counts()`, looking each queue's URL up once; scans the table only if *orders*."""

    def __init__(self, lab: Lab, orders: bool = True) -> None:
        self.lab = lab
        self.orders = orders
        self._urls: dict[str, str] = {}

    def __call__(self, started: float) -> dict[str, Any]:
        now = time.time()
        config, clients = self.lab.config, self.lab.clients
        row: dict[str, Any] = {"time": now, "seconds": round(now - started, 2)}
        row["orders"] = dynamodb.count_orders(config, clients) if self.orders else None
        for label, name in (("queue", config.queue_name), ("dlq", config.dlq_name)):
            if name not in self._urls and (info := sqs.get_queue(clients, name)) is not None:
                self._urls[name] = info.url
            counts = sqs.get_queue_counts(clients, self._urls[name]) if name in self._urls else None
            row[f"{label}_visible"] = counts["visible"] if counts else None
            row[f"{label}_in_flight"] = counts["in_flight"] if counts else None
        return row


class CountsRecorder:
    """Samples the counts of `lab.counts()` in the background into a DataFrame, while the notebook works.

    Use as a context manager (`with CountsRecorder(lab) as recorder: ...`), then `recorder.frame`.
    With `orders=False` it leaves the table alone: counting items is a scan, which under load slows
    the very writes being watched.
    """

    def __init__(self, lab: Lab, interval: float = SAMPLE_S, orders: bool = True) -> None:
        self.lab = lab
        self.interval = interval
        self._counts = _Counts(lab, orders)
        self._rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.started: float | None = None

    def start(self) -> CountsRecorder:
        """Take a first sample and keep sampling every `interval` seconds."""
        self.started = time.time()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="labkit-counts", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> pd.DataFrame:
        """Take a last sample, stop, and return the samples; re-raises an error the sampler hit."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        self._sample()
        return self.frame

    def __enter__(self) -> CountsRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.stop()
        else:  # the body's own error is the one to see
            self._stop.set()
            if self._thread is not None:
                self._thread.join()

    def sample(self) -> None:
        """Take a sample now, besides the regular ones (to catch a moment such as a peak)."""
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except Exception as exc:  # handed to stop(), which raises it in the caller's thread
                self._error = exc
                return

    def _sample(self) -> None:
        self._rows.append(self._counts(self.started or time.time()))

    @property
    def frame(self) -> pd.DataFrame:
        """One row per sample: seconds since the start, then the counts (None where a queue is missing)."""
        return _frame(self._rows)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["time", "seconds", *COUNT_COLUMNS])
    return frame.sort_values("time", kind="stable", ignore_index=True)


def watch_counts(
    lab: Lab,
    seconds: float | None = None,
    until_drained: bool = False,
    interval: float = SAMPLE_S,
    timeout: float = 120.0,
) -> pd.DataFrame:
    """Sample the counts for *seconds*, or until the queue holds nothing (*until_drained*); returns the samples."""
    if seconds is None and not until_drained:
        raise ValueError("watch_counts needs seconds=... or until_drained=True")
    limit = min(seconds if seconds is not None else timeout, timeout)
    sample = _Counts(lab)
    started = time.time()
    rows = [sample(started)]
    while time.time() - started < limit:
        if until_drained and not rows[-1]["queue_visible"] and not rows[-1]["queue_in_flight"]:
            break
        time.sleep(interval)
        rows.append(sample(started))
    return _frame(rows)


def counts_chart(
    frame: pd.DataFrame, title: str = "Queue and DLQ messages over time", journey: Journey | None = None
) -> Figure:
    """Line chart of queue visible, queue in flight and DLQ visible over time, marking a *journey*'s receives."""
    fig, ax = _pyplot().subplots(figsize=(9, 3.8))
    start = frame["time"].iloc[0] if len(frame) else 0.0
    end = frame["seconds"].iloc[-1] if len(frame) else 0.0
    pad = max(0.5, 0.06 * end)
    top = 1
    for column, label in LINES:
        values = frame[column].fillna(0)
        (line,) = ax.plot(frame["seconds"], values, drawstyle="steps-post", label=label, linewidth=2)
        if len(frame):
            # The last state as last seen, drawn on to the edge so a final change is not a lone point.
            ax.hlines(values.iloc[-1], end, end + pad, colors=line.get_color(), linewidth=2, linestyles="--")
            top = max(top, int(values.max()))
    steps = journey.steps if journey is not None else ()
    marks = [(s.time - start, s.text.split(" by ")[0]) for s in steps if s.stage == "received"]
    marks += [(s.time - start, "in the DLQ") for s in steps if s.stage == "dlq"]
    for at, label in marks:
        ax.axvline(at, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            label, (at, 0.98), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=8
        )
    ax.set_xlim(0, end + pad)
    ax.set_ylim(-0.05 * top, 1.45 * top)
    ax.set_title(title)
    ax.set_xlabel("seconds")
    ax.set_ylabel("messages")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(LINES), frameon=False)
    return finish(fig)


def dlq_frame(lab: Lab) -> pd.DataFrame:
    """The DLQ's messages (left in place): orderId, how often the function received it, its last error, the order.

    The receives are the function's invocations that logged a line for the message, or that failed
    before logging any record where the message's receives fall, a visibility timeout apart from
    when it was sent (`logs.invocations_of`).
    """
    messages = scan_dlq(lab)
    sent = {m["MessageId"]: sent_at(m) for m in messages}
    found = logs.invocations(lab, since=min(sent.values())) if sent else []
    visibility, receives = logs.receive_rules(lab) if sent else (0.0, None)
    rows = []
    for message in messages:
        order, _ = decode_body(message["Body"])
        order_id = order.get("orderId") if isinstance(order, dict) else None
        mine = logs.invocations_of(
            found,
            order_id if isinstance(order_id, str) else None,
            (message["MessageId"],),
            since=sent[message["MessageId"]],
            visibility_timeout=visibility,
            max_receives=receives,
        )
        reasons: list[str | None] = []
        counts: list[int] = []
        for invocation in mine:
            records = [r for r in invocation.records if r.message_id == message["MessageId"]]
            counts.extend(r.receive_count or 0 for r in records)
            reasons.append(next((r.reason for r in records if r.reason), None) or invocation.reason())
        rows.append(
            {
                "orderId": order_id,
                "receives": max([len(mine), *counts]),
                "last error": next((r for r in reversed(reasons) if r), None),
                "order": json.dumps(order, ensure_ascii=False) if isinstance(order, dict) else str(order),
            }
        )
    return pd.DataFrame(rows, columns=["orderId", "receives", "last error", "order"])
