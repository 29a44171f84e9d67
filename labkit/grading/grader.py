"""Run every check against one student's pipeline and collect a report; a check that cannot run scores zero."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from labkit.aws import error_code
from labkit.config import Config
from labkit.errors import ConfigError, LabkitError
from labkit.grading import (  # noqa: F401  (importing them registers the checks)
    checks,
    checks_behaviour,
    checks_function,
    checks_wiring,
)
from labkit.grading.facts import Facts
from labkit.grading.lookups import Missing
from labkit.grading.registry import CHECKS, Check, Outcome, fail
from labkit.grading.report import CheckResult, Report
from labkit.grading.rubric import Rubric, load_rubric
from labkit.grading.stacks import explain_missing
from labkit.session import Clients

log = logging.getLogger(__name__)

RubricSource = Rubric | str | Path | dict[str, Any] | None


def grade(
    config: Config | None = None,
    clients: Clients | None = None,
    probe: bool = True,
    rubric: RubricSource = None,
    only: Collection[str] | None = None,
    since: float | None = None,
) -> Report:
    """Check one student's pipeline step by step and score it.

    Args:
        config: whose resources (names, prefix) on which backend; from the environment if omitted.
        clients: boto3 clients to read with; made from *config* if omitted (required for the in-process cloud).
        probe: also check behaviour: publish a probe order and a malformed message through the pipeline,
            verify them (naming the function's real error from its log group when the order fails), and
            clean up. False reads only, for accounts where publishing is not allowed.
        rubric: points and requirements: a Rubric, a JSON file overriding the default, or a mapping.
        only: the ids of the checks to run (a notebook's check cell grades its own step); default: all.
        since: epoch seconds before which the function's log is no evidence (a notebook's session); default: all of it.
    Returns:
        The report: one result per check, scores per step.
    Raises:
        ConfigError: no credentials, or a rubric file that cannot be used.
        ClientError, EndpointConnectionError: the account or endpoint cannot be reached at all.
    """
    config = config if config is not None else Config.from_env()
    rules = load_rubric(rubric)
    if clients is None:
        clients = _clients_for(config)
    # Reaching the account at all is the run's business, not a check's: without it nothing can be graded.
    account = clients.account_id
    if only is not None and (unknown := sorted(set(only) - {c.id for c in CHECKS})):
        raise ConfigError(f"No grading check has the id(s) {', '.join(unknown)}.")
    # In the order of the assignment's steps, whichever module registered a check.
    chosen = sorted(
        (c for c in CHECKS if (probe or not c.probe) and (only is None or c.id in only)), key=lambda c: c.step
    )
    facts = Facts(config, clients, selected={c.id for c in chosen}, since=since)
    results = tuple(run_check(check, facts, rules) for check in chosen)
    # A missing resource that a stack failed to create is explained by the stack, not "create it first".
    results = explain_missing(results, config, clients)
    target = {
        "backend": config.backend,
        "endpoint": config.endpoint_url or "",
        "region": config.region,
        "account": account,
        "prefix": config.prefix or "-",
    }
    return Report(results, probe=probe, target=target, rubric=rules.source)


def max_score(rubric: RubricSource = None, probe: bool = True) -> float:
    """The points available under a rubric (with or without the probe)."""
    rules = load_rubric(rubric)
    return sum(rules.points_for(c.id) for c in CHECKS if probe or not c.probe)


def run_check(check: Check, facts: Facts, rubric: Rubric) -> CheckResult:
    """Run one check in a guard: whatever goes wrong becomes a failed result that says why."""
    try:
        outcome = check.run(facts, rubric)
    except Missing as exc:
        outcome = fail(str(exc))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        outcome = fail(
            f"could not check: {exc.operation_name} was refused ({error_code(exc)}: {error.get('Message')})."
        )
    except (BotoCoreError, LabkitError) as exc:
        outcome = fail(f"could not check: {exc}")
    except Exception as exc:  # one broken check must not cost a whole class its grades
        log.exception("check %s crashed", check.id)
        outcome = fail(f"could not check: the grader failed ({type(exc).__name__}: {exc}).")
    return _result(check, outcome, rubric)


def _result(check: Check, outcome: Outcome, rubric: Rubric) -> CheckResult:
    worth = rubric.points_for(check.id)
    return CheckResult(
        id=check.id,
        step=check.step,
        title=check.title,
        points=worth if outcome.passed else 0,
        max_points=worth,
        passed=outcome.passed,
        message=outcome.message,
        warning=outcome.warning,
    )


def _clients_for(config: Config) -> Clients:
    if config.is_local:
        # The grader never starts a cloud of its own: an in-process local cloud is the facade's.
        raise ConfigError(
            "The in-process local cloud belongs to a Lab: grade it with lab.grade() or labkit.grade(), "
            "or pass its clients to grade()."
        )
    return Clients(config)
