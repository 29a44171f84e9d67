"""`labkit grade`: the instructor's grader on the command line, for one pipeline or a whole roster.

One pipeline is graded through the facade (`Lab.grade()`) and its report printed as a table or JSON,
with an exit status scripts and CI can read (1 below full marks); a roster goes to `labkit.grading`,
which writes the gradebook CSV. Either can also be written as JUnit XML.
"""

from __future__ import annotations

import argparse
import json

from labkit.cli import common
from labkit.config import Config
from labkit.errors import InputError


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade one pipeline (exit 1 below full marks), or every student of a roster into a gradebook (exit 0)."""
    from labkit import grading

    rubric = grading.load_rubric(args.rubric)
    overrides = {} if args.prefix is None else {"prefix": args.prefix}
    if args.roster is None:
        if args.out is not None:
            raise InputError("--out names the gradebook that --roster writes; give --roster too.")
        report = common.connected_lab(**overrides).grade(probe=not args.no_probe, rubric=rubric)
        if args.junit is not None:
            report.to_junit(args.junit)
        print(report.to_json() if args.json else report.to_table())
        # Scripts and CI read the status: below full marks is not a success.
        return common.EXIT_BELOW_FULL if report.score < report.max_score else 0
    if args.out is None:
        raise InputError("--roster needs --out FILE for the gradebook CSV.")
    rows = grading.grade_roster(
        args.roster, Config.from_env(**overrides), probe=not args.no_probe, rubric=rubric, allow_local=False
    )
    grading.write_gradebook(rows, args.out)
    if args.junit is not None:
        grading.write_junit([r.junit_suite() for r in rows], args.junit)
    if args.json:
        print(json.dumps([r.as_csv_row() for r in rows], ensure_ascii=False))
    else:
        print(grading.gradebook_table(rows))
        print(f"gradebook: {args.out}")
    return 0
