"""A progress bar for notebooks whose saved text says how it ended, not `HBox(...)` or 0%.

A widget's saved output holds the widget's view and a text/plain fallback, which JupyterLab shows
when the widget's state is gone (a reopened notebook, GitHub, nbval). The bar re-displays itself
when it closes, so that text is the final count and rate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any


class ProgressBar:
    """Done out of total, with the rate since the first update (the first update starts the clock)."""

    def __init__(self, total: int, description: str, unit: str = "order") -> None:
        import ipywidgets as widgets

        self.total = total
        self.description = description
        self.unit = unit
        self.done = 0
        self._started: float | None = None
        self._last: float | None = None
        self._rate: float | None = None
        self.bar = widgets.IntProgress(
            value=0, min=0, max=max(total, 1), description=description, style={"description_width": "initial"}
        )
        self.label = widgets.Label(value=self.status())
        self.box = widgets.HBox([self.bar, self.label])

    @property
    def rate(self) -> float:
        """Units per second between the first and the last update, or the rate the last update gave."""
        if self._rate is not None:
            return self._rate
        if self._started is None or self._last is None or self._last <= self._started:
            return 0.0
        return self.done / (self._last - self._started)

    def update(self, done: int, rate: float | None = None) -> None:
        """Set how many are done; *rate*, when the caller measured it, is the rate shown from then on."""
        self._rate = rate
        now = time.monotonic()
        if self._started is None:
            self._started = now
        self._last = now
        self.done = done
        self.bar.value = min(done, self.bar.max)
        self.label.value = self.status()

    def status(self) -> str:
        """`120/200 orders, 95.3 orders/s`."""
        return f"{self.done}/{self.total} {self.unit}s, {self.rate:.1f} {self.unit}s/s"

    def __str__(self) -> str:
        return f"{self.description}: {self.status()}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = str(self)
        return bundle


@contextlib.contextmanager
def progress(total: int, description: str, unit: str = "order") -> Iterator[Callable[..., None]]:
    """A progress bar in the notebook; yields the callback that sets how many are done.

    Shown once and updated in place; when the block ends, its saved text becomes the final count and rate.
    """
    from IPython.display import display

    bar = ProgressBar(total, description, unit)
    handle = display(bar, display_id=True)
    try:
        yield bar.update
    finally:
        if handle is not None:
            handle.update(bar)
