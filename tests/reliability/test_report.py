"""The report script, `python -m labkit.experiments`: its own local cloud (so alone in its module), its figures."""

import json

from labkit.experiments.__main__ import main


def test_the_report_script_prints_the_figures(capsys):
    """`python -m labkit.experiments --json` runs a scenario on its own local cloud and prints its figures."""
    assert main(["--scenario", "mixed-load", "--orders", "3", "--json"]) == 0

    figures = json.loads(capsys.readouterr().out)["mixed-load"]
    assert figures["ok"] is True
    assert (figures["valid_orders"], figures["stored"], figures["lost"], figures["duplicated"]) == (3, 3, 0, 0)
    assert figures["dlq"] == figures["malformed"] > 0
