"""Experiments: what the pipeline does under load, faults and scale, measured.

`reliability` publishes a mixed load and counts what was stored, dead-lettered, lost or duplicated;
`scenarios` runs that load under each fault of `faults` (DynamoDB throttling and errors injected
where the local cloud receives the function's requests, a crashing handler, a stopped Lambda
service); `backlog` drains a queue at different batch sizes; `costs` prices a workload with AWS's
published prices. `python -m labkit.experiments [--faults]` prints the reliability figures.

May import: the core, `labkit.resources`, `labkit.localcloud` (faults are injected there), the
facade `labkit.lab` and `labkit.observe`. Never the grader, the notebook helpers or the CLI.
"""
