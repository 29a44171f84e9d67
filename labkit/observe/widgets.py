"""An order form for notebooks: fill in an order, press Publish, and watch where it goes.

The journey comes from real AWS APIs (see `labkit.observe.journey.track_order`): published to the topic,
in the queue, each receive by the function, then `stored: <orderId>` or `DLQ: <orderId> (<reason>)`.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets
from botocore.exceptions import BotoCoreError, ClientError

from labkit.errors import LabkitError
from labkit.lab import Lab
from labkit.lambdaerrors import advice
from labkit.observe.journey import Journey, Step, publish_and_track
from labkit.orders import ITEMS, SAMPLE_ORDER, STATUSES, make_order

FORM_CLASS = "labkit-order-form"
JOURNEY_CLASS = "labkit-journey"
TEXT_FALLBACK = "Order form (userId, item, quantity, status, Publish): run this cell to use it."


class OrderForm:
    """Fields userId, item, quantity and status, a Publish button, and the live journey of each order."""

    def __init__(self, lab: Lab, timeout: float | None = None, id_prefix: str = "WEB") -> None:
        self.lab = lab
        self.timeout = timeout
        self.id_prefix = id_prefix
        self.last_journey: Journey | None = None
        style = {"description_width": "5.5em"}
        self.user_id = widgets.Text(
            value=SAMPLE_ORDER["userId"], description="userId", placeholder="e.g. U123", style=style
        )
        self.item = _suggesting("item", SAMPLE_ORDER["itemName"], ITEMS, style)
        self.quantity = widgets.IntText(value=SAMPLE_ORDER["quantity"], description="quantity", style=style)
        self.status = _suggesting("status", SAMPLE_ORDER["status"], STATUSES, style)
        self.button = widgets.Button(
            description="Publish",
            button_style="primary",
            icon="paper-plane",
            tooltip=f"Publish the order to {lab.config.topic_name} and follow it",
        )
        self.journey = widgets.HTML(value=_render([], "Fill in an order and press Publish."))
        self.journey.add_class(JOURNEY_CLASS)
        self.box = widgets.VBox([self.user_id, self.item, self.quantity, self.status, self.button, self.journey])
        self.box.add_class(FORM_CLASS)
        self.button.on_click(lambda _button: self.publish())

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # The text/plain part is what a saved notebook shows once the widget's state is gone
        # (reopened, viewed on GitHub): a sentence, not the widget's `VBox(children=...)` repr.
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = TEXT_FALLBACK
        return bundle

    def __repr__(self) -> str:
        return TEXT_FALLBACK

    def order(self) -> dict[str, Any]:
        """The order the fields describe, with a fresh orderId and the current time."""
        order_id = f"{self.id_prefix}-{uuid.uuid4().hex[:8].upper()}"
        return make_order(order_id, self.user_id.value, self.item.value, self.quantity.value, self.status.value)

    def publish(self) -> Journey | None:
        """Publish the order in the fields and update the journey as it goes; returns the journey."""
        order = self.order()
        lines: list[str] = []
        title = f"order {order['orderId']}"
        self.journey.value = _render(lines, title)
        self.button.disabled = True

        def show(step: Step) -> None:
            lines.append(step.text)
            self.journey.value = _render(lines, title)

        try:
            self.last_journey = publish_and_track(self.lab, order, timeout=self.timeout, on_step=show)
            trip = self.last_journey
            if trip.error is not None and trip.outcome != "stored":
                # The runtime's error with its traceback (the file and line that raised), and what to do.
                self.journey.value = _render(lines, title, f"{trip.error}\n\n{trip.error.advice()}")
            elif trip.outcome == "dlq" and trip.reason and trip.reason.startswith("Task timed out"):
                self.journey.value = _render(lines, title, advice(trip.reason))
        except (LabkitError, ClientError, BotoCoreError) as exc:
            # A button has no cell to raise into: the error is shown where the journey would be.
            lines.append(f"error: {exc}")
            self.journey.value = _render(lines, title)
            self.last_journey = None
        finally:
            self.button.disabled = False
        return self.last_journey


def _suggesting(description: str, value: str, options: Iterable[str], style: dict[str, str]) -> widgets.Combobox:
    """A field that suggests *options* yet takes any text: the handler, not the form, says what is valid."""
    return widgets.Combobox(
        value=value,
        options=list(options),
        description=description,
        placeholder=f"e.g. {value}",
        ensure_option=False,
        style=style,
    )


def _render(lines: list[str], title: str, error: str | None = None) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    detail = (
        f'<pre style="margin:0.3em 0 0 0;white-space:pre-wrap;color:#b00">{html.escape(error)}</pre>' if error else ""
    )
    return (
        f'<div role="status" aria-live="polite"><b>{html.escape(title)}</b>'
        f'<ol style="margin:0.2em 0 0 0">{items}</ol>{detail}</div>'
    )
