"""A CloudFormation template of the pipeline a student built, whatever way, read through the describe APIs.

Like the console's IaC generator (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/generate-IaC.html)
it reads each resource back (DescribeTable, GetTopicAttributes, GetQueueAttributes, GetRole and its
policies, GetFunction, ListEventSourceMappings, ListSubscriptionsByTopic) and writes what it found;
unlike it, names become `<Prefix>-Orders`... with `Prefix` a parameter, and every ARN, URL or name of
another resource of the pipeline a `!Ref`/`!GetAtt`, so the template deploys again under any prefix.
AWS's defaults are left out, and the logical ids are those of `infra/template.yaml`, so the two compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.cfnyaml import dump_template
from labkit.config import Config
from labkit.iac.names import HAS_PREFIX, PREFIX_PARAMETER
from labkit.iac.reading import Reader
from labkit.session import Clients


@dataclass
class Exported:
    """The template, the files of the function's code (path relative to the template -> bytes), and what was missing."""

    template: dict[str, Any]
    code: dict[str, bytes] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The template as YAML."""
        return dump_template(self.template)

    def write(self, path: Path) -> list[Path]:
        """Write the template to *path* and the code beside it; returns the files written."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text, encoding="utf-8")
        written = [path]
        for relative, content in self.code.items():
            target = path.parent / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            written.append(target)
        return written


def export_template(config: Config, clients: Clients, code_folder: str = "OrderProcessor-code") -> Exported:
    """A template of *config*'s pipeline as built; the function's code goes to *code_folder* beside it."""
    reader = Reader(config, clients)
    resources: dict[str, Any] = {}
    for logical, read in (
        ("OrdersTable", reader.table),
        ("OrderTopic", reader.topic),
        ("OrderDLQ", reader.dlq),
        ("OrderQueue", reader.queue),
        ("OrderQueuePolicy", reader.queue_policy),
        ("OrderSubscription", reader.subscription),
        ("OrderProcessorRole", reader.role),
        ("OrderProcessor", lambda: reader.function(code_folder)),
        ("OrderProcessorOrderQueue", reader.mapping),
    ):
        resource = read()
        if resource is None:
            reader.missing.append(logical)
        else:
            resources[logical] = resource
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Orders Lab pipeline exported from what was built (prefix {config.prefix or '-'}).",
        "Parameters": {
            PREFIX_PARAMETER: {
                "Type": "String",
                "Default": config.prefix,
                "AllowedPattern": "^[A-Za-z0-9-]{0,20}$",
                "Description": "Put before every name, as LABKIT_PREFIX does; empty for the assignment's names.",
            }
        },
        "Conditions": {HAS_PREFIX: {"Fn::Not": [{"Fn::Equals": [{"Ref": PREFIX_PARAMETER}, ""]}]}},
        "Resources": reader.substitute(resources),
    }
    return Exported(template, reader.code, reader.missing)
