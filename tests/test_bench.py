"""The benchmark at a tiny size: every figure is there and consistent (no timing is asserted: machines differ)."""

import json

import pytest

from labkit import bench
from labkit.bench.cli import main
from labkit.errors import InputError
from labkit.orders import generate_orders

RUN_FIGURES = {
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
TINY = [
    "--orders", "20", "--bound-orders", "10", "--invocations", "5", "--cold-starts", "2",
    "--latency-orders", "5", "--backlog-small", "5", "--backlog", "20",
]  # fmt: skip


def _spread_ok(spread, n):
    return spread["n"] == n and 0 < spread["p50_ms"] <= spread["p95_ms"] <= spread["max_ms"]


def test_benchmark_json_has_every_figure(capsys):
    # WHEN the whole benchmark runs at a tiny size, idle window included
    assert main([*TINY, "--idle-seconds", "2", "--json"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    result = json.loads(line)
    # THEN the empty handler's warm and cold invocations are timed both ways, with an Init Duration per cold start
    inv = result["invocations"]
    assert _spread_ok(inv["warm_runtime"], 5) and _spread_ok(inv["warm_api"], 5)
    assert _spread_ok(inv["cold_runtime"], 2) and _spread_ok(inv["cold_api"], 2)
    assert _spread_ok(inv["cold_init"], 4)
    # AND a cold start's Init Duration is part of the cold invocation it belongs to
    assert inv["cold_init"]["p50_ms"] <= inv["cold_runtime"]["max_ms"]
    # AND both local clouds have a bound over the functions' own endpoint, one run per batch size, and latency
    modes = result["modes"]
    assert [m["mode"] for m in modes] == ["in-process", "serve"]
    for mode in modes:
        assert mode["endpoint"].startswith("http://127.0.0.1:")
        assert mode["put_item_per_s"] > 0 and mode["put_item_plain_per_s"] > 0
        assert [r["batch_size"] for r in mode["runs"]] == [1, 10]
        for run in mode["runs"]:
            assert set(run) == RUN_FIGURES
            assert run["orders"] == 20 and run["retried"] == 0
            # a ratio of two timings taken at different moments of a shared machine: positive, no bound asserted
            assert run["ratio_to_bound"] > 0
            assert run["ratio_to_bound"] == pytest.approx(run["orders_per_s"] / mode["put_item_per_s"], rel=0.01)
            assert 0 < run["latency_p50_ms"] <= run["latency_p95_ms"] <= run["latency_max_ms"]
            assert 0 <= run["max_queue_visible"] <= run["max_queue_depth"] <= 20
        one, ten = mode["runs"]
        assert one["invocations"] == 20 and one["records_per_invocation"] == 1
        assert 2 <= ten["invocations"] < 20 and ten["records_per_invocation"] > 1
        latency = mode["latency"]
        assert latency["orders"] == 5 and 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    # AND the backlogs drained, at rates whose ratio is what is reported, with memory sampled while they did
    backlog = result["backlog"]
    assert (backlog["small_orders"], backlog["large_orders"], backlog["batch_size"]) == (5, 20, 10)
    assert backlog["small_per_s"] > 0 and backlog["large_per_s"] > 0
    assert backlog["ratio"] == pytest.approx(backlog["large_per_s"] / backlog["small_per_s"], rel=0.01)
    assert 0 < backlog["ratio"] <= 10
    assert 0 < backlog["rss_before_mb"] <= backlog["peak_rss_mb"] * 1.5
    assert backlog["peak_rss_mb"] <= backlog["peak_rss_with_environments_mb"]
    # AND the idle figure is a percentage of a core over the window, from the server and its processes
    idle = result["idle"]
    assert idle["seconds"] >= 2 and idle["cpu_seconds"] >= 0 and idle["percent_of_core"] >= 0
    assert idle["percent_of_core"] == pytest.approx(100 * idle["cpu_seconds"] / idle["seconds"], abs=0.01)
    assert idle["processes"] >= 2  # the server and its fork server at least
    # AND the run says what it measured, on what
    assert result["sizes"]["backlog_large"] == 20 and result["environment"]["moto"]
    assert 0 < result["rss_start_mb"] <= result["peak_rss_mb"]


def test_table_shows_every_figure(capsys):
    assert main([*TINY, "--batch-sizes", "10", "--modes", "in-process", "--idle-seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "| warm, runtime (overhead) |" in out and "| cold, Init Duration |" in out
    assert "| in-process |" in out and "| serve |" not in out
    assert "publish → stored" in out and "backlog at batch size 10: 5 orders" in out
    assert "idle `labkit serve`" not in out and "peak RSS" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--orders", "0"],
        ["--batch-sizes", "1,11"],
        ["--batch-sizes", "ten"],
        ["--backlog-batch-size", "1,10"],
        ["--idle-seconds", "-1"],
        ["--modes", "cloud"],
        ["--backlog-small", "50", "--backlog", "10"],
    ],
)
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_small_runs_scale_the_backlog_and_the_idle_window(monkeypatch):
    seen = []
    monkeypatch.setattr("labkit.bench.cli.run_benchmark", lambda sizes: seen.append(sizes) or _Printable())
    main(["--orders", "200"])
    main([])
    small, default = seen
    assert (small.backlog_small, small.backlog_large, small.idle_seconds) == (20, 400, 3.0)
    assert (default.backlog_small, default.backlog_large, default.idle_seconds) == (100, 10_000, 30.0)


class _Printable:
    def table(self):
        return ""


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


def test_publishing_waits_on_the_queue_only_when_asked(built_lab, monkeypatch):
    # GIVEN a local cloud whose receive cost is flat at depth: publishing applies no back-pressure by default
    waits = []
    monkeypatch.setattr(type(built_lab), "_wait_below", lambda self, url, depth, timeout=300: waits.append(depth))
    built_lab.publish_orders(generate_orders(30, prefix="FREE"))
    assert waits == []
    # WHEN a caller asks for a depth limit THEN publishing checks the queue after each chunk of that size
    built_lab.publish_orders(generate_orders(30, prefix="PACED"), max_queue_depth=10)
    assert waits == [10, 10, 10]
    built_lab.wait_until_drained(timeout=60)


def test_sizes_out_of_range_are_refused(built_lab):
    with pytest.raises(InputError, match="1 to 10"):
        bench.compare_batch_sizes(built_lab, n_orders=5, batch_sizes=(0,))
    with pytest.raises(InputError, match="at least one order"):
        bench.run_benchmark(bench.Sizes(orders=0))
    with pytest.raises(InputError, match="large backlog"):
        bench.run_benchmark(bench.Sizes(backlog_small=10, backlog_large=5))
