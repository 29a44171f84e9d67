"""A template checked with cfn-lint, AWS's CloudFormation linter, through its Python API.

cfn-lint validates every resource against CloudFormation's own resource schemas and SAM's, offline
(https://github.com/aws-cloudformation/cfn-lint#python-api); `make lint` runs the same on
`infra/template.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.config import DEFAULT_REGION


@dataclass(frozen=True)
class Finding:
    """One problem cfn-lint found: its rule, level, where (line), and what."""

    rule: str
    level: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.level}) line {self.line}: {self.message}"


def lint_template(template: Path | str, region: str = DEFAULT_REGION) -> list[Finding]:
    """cfn-lint's findings for a template file (or its text), in line order; an empty list is a clean template."""
    from cfnlint.api import lint

    text = template if isinstance(template, str) and "\n" in template else Path(template).read_text(encoding="utf-8")
    matches = lint(text, regions=[region])
    findings = [
        Finding(
            rule=str(match.rule.id),
            level=str(match.rule.severity),
            line=int(match.linenumber),
            message=str(match.message),
        )
        for match in matches
    ]
    return sorted(findings, key=lambda f: (f.line, f.rule))
