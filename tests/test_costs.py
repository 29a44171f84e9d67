"""The cost model: the dated price list, the arithmetic per line item, the table and the chart."""

import json
from datetime import date

import pytest

from labkit.errors import ConfigError, InputError
from labkit.experiments import costs


def test_price_list_is_dated_regional_and_sourced():
    prices = costs.load_prices()
    assert prices.region == "us-east-1" and prices.currency == "USD"
    assert date(2024, 11, 1) <= prices.as_of <= date.today()
    assert set(prices.items) == set(costs.PRICE_KEYS)
    for key, price in prices.items.items():
        assert price.usd >= 0 and price.per >= 1 and price.unit, key
        assert price.sources and all(url.startswith("https://") for url in price.sources), key
    # Every figure has at least one page on an AWS domain behind it.
    assert all(any(".amazon.com/" in url for url in p.sources) for p in prices.items.values())


def test_million_orders_line_items_follow_the_billing_rules():
    # GIVEN the shipped prices and the default workload (small orders, 1 KB envelopes)
    prices = costs.load_prices()
    one = costs.cost_breakdown(1_000_000, 1, prices).set_index("item")
    ten = costs.cost_breakdown(1_000_000, 10, prices).set_index("item")
    # THEN batching ten to an invocation divides invocations, receives and deletes by ten
    for item in ("requests", "ReceiveMessage by Lambda", "DeleteMessageBatch by Lambda"):
        assert one.loc[item, "quantity"] == 1_000_000
        assert ten.loc[item, "quantity"] == 100_000
    # AND what happens once per order does not change with the batch size
    for item in ("SendMessage from SNS", "deliveries to SQS", "write request units", "publish requests"):
        assert one.loc[item, "quantity"] == ten.loc[item, "quantity"]
    assert one.loc["publish requests", "quantity"] == 100_000  # PublishBatch of ten
    assert one.loc["write request units", "quantity"] == 1_000_000  # one WRU per item under 1 KB
    # AND each line is quantity times the listed unit price
    expected = 1_000_000 * prices["dynamodb_write_request_unit"].usd / prices["dynamodb_write_request_unit"].per
    assert one.loc["write request units", "usd"] == pytest.approx(expected)
    # AND duration is billed per started millisecond: 1M x 9 ms vs 100k x 63 ms at 128 MB
    assert one.loc["duration (GB-seconds)", "quantity"] == pytest.approx(1_000_000 * 0.009 * 0.125)
    assert ten.loc["duration (GB-seconds)", "quantity"] == pytest.approx(100_000 * 0.063 * 0.125)


def test_large_messages_are_billed_per_64_kb_chunk():
    workload = costs.Workload(envelope_bytes=100 * 1024, order_bytes=100 * 1024)
    rows = costs.cost_breakdown(1_000, 10, workload=workload).set_index("item")
    assert rows.loc["SendMessage from SNS", "quantity"] == 1_000 * 2
    assert rows.loc["ReceiveMessage by Lambda", "quantity"] == 100 * 16  # 1000 KB per batch of ten
    assert rows.loc["publish requests", "quantity"] == 100 * 16


def test_cost_table_compares_batch_sizes_with_a_total():
    table = costs.cost_table(1_000_000, (1, 10))
    assert list(table.columns) == ["batch size 1", "batch size 10"]
    total = table.loc[("Total", "")]
    body = table.drop(index="Total", level="service")
    assert total["batch size 1"] == pytest.approx(body["batch size 1"].sum(), abs=1e-3)
    # Batch size 10 is cheaper: fewer invocations, receives and deletes for the same orders.
    assert total["batch size 10"] < total["batch size 1"]
    assert table.attrs["as_of"] == costs.load_prices().as_of.isoformat()


def test_cost_chart_has_one_stacked_bar_per_batch_size():
    fig = costs.cost_chart(1_000_000, (1, 10))
    (ax,) = fig.axes
    services = [t.get_text() for t in ax.get_legend().get_texts()]
    assert services == ["SNS", "SQS", "Lambda", "DynamoDB"]
    assert len(ax.patches) == len(services) * 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["batch size 1", "batch size 10"]
    tops = {round(p.get_x() + p.get_width() / 2): p.get_y() + p.get_height() for p in ax.patches}
    table = costs.cost_table(1_000_000, (1, 10))
    assert tops[0] == pytest.approx(table.loc[("Total", ""), "batch size 1"], abs=1e-3)


@pytest.mark.parametrize(("orders", "sizes"), [(0, (1,)), (10, (0,)), (10, (11,)), (10, ())])
def test_bad_input_is_refused_with_a_clear_error(orders, sizes):
    with pytest.raises(InputError, match=r"at least 1|1 to 10"):
        costs.cost_table(orders, sizes)


def test_a_broken_price_list_names_the_file(tmp_path):
    raw = json.loads(costs.resources.files("labkit").joinpath("data", "prices.json").read_text())
    del raw["prices"]["sqs_request"]
    broken = tmp_path / "prices.json"
    broken.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"prices\.json"):
        costs.load_prices(broken)
    with pytest.raises(ConfigError, match="No price list"):
        costs.load_prices(tmp_path / "missing.json")
