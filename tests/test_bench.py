"""The benchmark at a tiny size: every figure is there and sane (no timing is asserted: machines differ)."""

import json

import pytest

from labkit import bench
from labkit.bench.cli import main
from labkit.errors import InputError

FIGURES = {
    "batch_size",
    "orders",
    "seconds",
    "orders_per_s",
    "ratio_to_bound",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_max_ms",
    "invocations",
    "records_per_invocation",
    "retried",
    "max_queue_visible",
    "max_queue_depth",
}


def test_benchmark_json_has_every_figure(capsys):
    # WHEN the benchmark runs as CI runs it, at a tiny size
    assert main(["--orders", "30", "--bound-orders", "20", "--json"]) == 0
    out = capsys.readouterr().out
    # THEN it prints one JSON object
    (line,) = out.strip().splitlines()
    result = json.loads(line)
    # AND the bound and memory figures are there and positive
    assert result["orders"] == 30
    assert result["put_item_per_s"] > 0 and result["put_item_plain_per_s"] > 0
    assert 0 < result["rss_start_mb"] <= result["peak_rss_mb"]
    assert result["environment"]["moto"]
    # AND one run per default batch size, each with every figure
    runs = result["runs"]
    assert [r["batch_size"] for r in runs] == [1, 10]
    for run in runs:
        assert set(run) == FIGURES
        assert run["orders"] == 30 and run["retried"] == 0
        assert run["orders_per_s"] > 0 and run["seconds"] > 0
        assert run["ratio_to_bound"] == pytest.approx(run["orders_per_s"] / result["put_item_per_s"], rel=0.01)
        assert 0 < run["latency_p50_ms"] <= run["latency_p95_ms"] <= run["latency_max_ms"]
        assert 0 <= run["max_queue_visible"] <= run["max_queue_depth"] <= 30
    # AND the batch size shapes the invocations: one per order at 1, fewer at 10
    one, ten = runs
    assert one["invocations"] == 30 and one["records_per_invocation"] == 1
    assert 3 <= ten["invocations"] < 30 and ten["records_per_invocation"] > 1


def test_table_output_shows_each_batch_size(capsys):
    assert main(["--orders", "12", "--batch-sizes", "10", "--bound-orders", "10"]) == 0
    out = capsys.readouterr().out
    assert "put_item bound" in out and "| batch size |" in out
    assert "\n| 10 | 12 |" in out and "peak RSS" in out


@pytest.mark.parametrize("argv", [["--orders", "0"], ["--batch-sizes", "1,11"], ["--batch-sizes", "ten"]])
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_compare_batch_sizes_counts_invocations_and_restores_the_trigger(built_lab):
    # WHEN the same orders go through at batch size 1 and then 10
    frame = bench.compare_batch_sizes(built_lab, n_orders=20, batch_sizes=(1, 10), timeout=60)
    # THEN one row per batch size with throughput and invocations
    assert list(frame["batch_size"]) == [1, 10]
    assert (frame["orders"] == 20).all() and (frame["orders_per_s"] > 0).all()
    assert frame.loc[0, "invocations"] == 20
    assert 2 <= frame.loc[1, "invocations"] < 20
    # AND every order was stored, and the trigger is back at the lab's own batch size
    assert built_lab.counts()["orders"] >= 40
    mapping = built_lab.ensure_trigger()
    assert mapping.batch_size == built_lab.config.batch_size


def test_sizes_out_of_range_are_refused(built_lab):
    with pytest.raises(InputError, match="1 to 10"):
        bench.compare_batch_sizes(built_lab, n_orders=5, batch_sizes=(0,))
    with pytest.raises(InputError, match="at least one order"):
        bench.run_benchmark(orders=0)
