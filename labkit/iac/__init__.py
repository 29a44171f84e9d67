"""The pipeline as code: the SAM template, deployed, watched, linted, exported and compared.

`infra/template.yaml` is the pipeline of notebooks 01-04 as one AWS SAM template. Here: its code
packaged to S3 the way `aws cloudformation package` does (`package`), deployed as a stack through
CloudFormation's change sets the way `aws cloudformation deploy` does, its events and its deletion
(`stacks`); templates linted with cfn-lint (`lint`); a template written from what a student built,
whatever way, read through the describe APIs like the console's IaC generator (`export`); and two
templates compared resource by resource, SAM ones after AWS's own transform (`diff`).

May import: the core, boto3, cfn-lint and aws-sam-translator; real AWS APIs only, so all of it
works the same against the local cloud and an AWS account. Never the builders, the local cloud or the grader.
"""

from labkit.iac.diff import Difference, diff_templates
from labkit.iac.export import export_template
from labkit.iac.lint import Finding, lint_template
from labkit.iac.names import STACK_NAME, TEMPLATE_PATH, stack_name
from labkit.iac.stacks import StackResult, delete_stack, deploy_stack, stack_events, stack_resources, wait_for_stack

__all__ = [
    "STACK_NAME",
    "TEMPLATE_PATH",
    "Difference",
    "Finding",
    "StackResult",
    "delete_stack",
    "deploy_stack",
    "diff_templates",
    "export_template",
    "lint_template",
    "stack_events",
    "stack_name",
    "stack_resources",
    "wait_for_stack",
]
