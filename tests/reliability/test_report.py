"""The report script, `python -m labkit.reliability`: its own local cloud (so alone in its module), its figures."""

import json

from labkit import reliability


def test_the_report_script_prints_the_figures(capsys):
    """`python -m labkit.reliability --json` runs a scenario on its own local cloud and prints its figures."""
    assert reliability.main(["--scenario", "mixed-load", "--orders", "3", "--json"]) == 0

    figures = json.loads(capsys.readouterr().out)["mixed-load"]
    assert figures["ok"] is True
    assert (figures["valid_orders"], figures["stored"], figures["lost"], figures["duplicated"]) == (3, 3, 0, 0)
    assert figures["dlq"] == figures["malformed"] > 0
