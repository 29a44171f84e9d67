"""The function's log in a notebook, as the CloudWatch console lists it: timestamp, then message."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.observe import logs

if TYPE_CHECKING:
    from labkit.lab import Lab

DEFAULT_SINCE = "1h"


@dataclass(frozen=True)
class LogView:
    """Log events of the function, shown as a table in a notebook and as text elsewhere."""

    group: str
    events: tuple[dict[str, Any], ...]
    what: str

    def lines(self) -> list[str]:
        """One text entry per event: `timestamp  message`, the message's further lines indented."""
        return [logs.format_event(event) for event in self.events]

    def __str__(self) -> str:
        head = f"{self.group}: {len(self.events)} event(s), {self.what}"
        return "\n".join([head, *self.lines()]) if self.events else f"{head}: none"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        head = html.escape(f"{self.group}: {len(self.events)} event(s), {self.what}")
        if not self.events:
            return f"<p><b>{head}</b>: none</p>"
        rows = []
        for event in self.events:
            stamp, lines = logs.event_lines(event)
            rows.append(
                f'<tr><td style="white-space:nowrap;vertical-align:top">{html.escape(stamp)}</td>'
                '<td style="text-align:left"><pre style="margin:0;white-space:pre-wrap">'
                f"{html.escape(chr(10).join(lines))}</pre></td></tr>"
            )
        return (
            f"<p><b>{head}</b></p><table><thead><tr><th>Timestamp</th><th style='text-align:left'>Message</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
        )


def function_logs(
    lab: Lab,
    order_id: str | None = None,
    request_id: str | None = None,
    since: float | str | None = DEFAULT_SINCE,
) -> LogView:
    """The function's log events, filtered by order and/or request id, since *since* (`15m`, epoch seconds)."""
    start = logs.parse_since(since) if isinstance(since, str) else since
    events = logs.select_events(lab, start, order_id=order_id, request_id=request_id)
    parts = [f"order {order_id}" if order_id else "", f"request {request_id}" if request_id else ""]
    chosen = " and ".join(p for p in parts if p) or "all invocations"
    window = f"in the last {since}" if isinstance(since, str) else ("since the start" if since is None else "")
    return LogView(logs.log_group(lab), tuple(events), " ".join(filter(None, [chosen, window])))
