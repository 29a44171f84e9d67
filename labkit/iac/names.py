"""Where the template is, what its stacks and parameters are called, and where packaged code goes."""

from __future__ import annotations

from pathlib import Path

from labkit.config import Config

# The repository's template; `labkit template` writes exports beside it by default.
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
# The stack of one prefix's pipeline: OrdersLab, or <prefix>-OrdersLab.
STACK_NAME = "OrdersLab"
# The template parameter that plays LABKIT_PREFIX's part, and the condition that tests it.
PREFIX_PARAMETER = "Prefix"
HAS_PREFIX = "HasPrefix"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# Packaged code goes to this bucket of the account, one per region, as `sam deploy --resolve-s3` makes one.
ARTIFACT_BUCKET = "labkit-artifacts-{account}-{region}"


def stack_name(config: Config) -> str:
    """The stack name for *config*'s prefix."""
    return f"{config.prefix}-{STACK_NAME}" if config.prefix else STACK_NAME
