"""Helpers shared by the reliability tests."""

from labkit.experiments.reliability import Figures


def report(name: str, figures: Figures) -> None:
    """Print the figures a reader of `pytest -s` wants: in, stored, DLQ, lost, duplicated."""
    print(
        f"\n{name}: in={figures.published} stored={figures.stored}/{figures.valid_orders} "
        f"DLQ={figures.dlq}/{figures.malformed} lost={figures.lost} duplicated={figures.duplicated} "
        f"stale={figures.stale} valid_in_dlq={figures.valid_in_dlq} needless_retries={figures.needless_retries}"
    )
