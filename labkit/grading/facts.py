"""What the grader reads from the account: each lookup made once, read-only, with a clear word when it is absent.

`Facts` is the checks' one view of a student's account for one grading run: the `Lookups` of the
table, the topic and the queues (lookups.py), and here the reads of step 4, the function the order
queue triggers (else the first of the accepted names), its execution role with every policy document,
and the trigger from the queue to the function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from labkit.aws import error_code, paginate
from labkit.grading.lookups import Lookups, Missing
from labkit.grading.policy import parse_document


@dataclass(frozen=True)
class Function:
    """The function found under one of the accepted names."""

    name: str
    configuration: dict[str, Any]


class Facts(Lookups):
    """Read-only lookups of one student's resources, cached for the length of one grading run.

    The table, topic and queue reads are `Lookups`'; here are the function, its role and its trigger.
    """

    # Step 4.
    def function(self) -> Function:
        """The assignment's function: the one the order queue triggers, else the first of the accepted names.

        A student may hold several candidates (both spellings, drafts, copies); the pipeline's is the graded one.
        """
        return self.once("function", self._function)

    def _function(self) -> Function:
        lam = self.clients("lambda")
        for name in self._candidate_names():
            try:
                return Function(name=name, configuration=lam.get_function_configuration(FunctionName=name))
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
        raise Missing(
            f"Function {self.config.function_name} does not exist: create it first (step 4, Python, the code of code.py)."
        )

    def _candidate_names(self) -> list[str]:
        """Functions the order queue triggers (enabled first, the expected name first), then the accepted names."""
        try:
            mappings = self.queue_mappings()
        except (Missing, ClientError):
            mappings = []  # no queue, or not readable: fall back on the names; the queue's checks say why
        preferred = {name: rank for rank, name in enumerate(self.config.function_names)}
        wired = sorted(
            mappings,
            key=lambda m: (
                m.get("State") != "Enabled",
                preferred.get(function_name_of(m.get("FunctionArn", "")), len(preferred)),
                function_name_of(m.get("FunctionArn", "")),
            ),
        )
        names = [function_name_of(m.get("FunctionArn", "")) for m in wired]
        return list(dict.fromkeys([*names, *self.config.function_names]))

    def other_functions(self) -> list[str]:
        """Candidates that exist besides the graded function: the other accepted names, and other functions the
        order queue triggers."""
        return self.once("other_functions", self._other_functions)

    def _other_functions(self) -> list[str]:
        graded = self.function().name
        lam = self.clients("lambda")
        found = []
        for name in self._candidate_names():
            if name == graded:
                continue
            try:
                lam.get_function_configuration(FunctionName=name)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    continue
                raise
            found.append(name)
        return found

    def function_name(self) -> str:
        """The name of the function found, or the expected name if none."""
        try:
            return self.function().name
        except Missing:
            return self.config.function_name

    def role(self) -> dict[str, Any]:
        """The function's execution role (labkit's role by name when there is no function yet)."""
        return self.once("role", self._role)

    def _role(self) -> dict[str, Any]:
        try:
            name = str(self.function().configuration["Role"]).rsplit("/", 1)[-1]
            whose = f"the execution role of function {self.function().name}"
        except Missing:
            name, whose = self.config.role_name, "the lab's execution role"
        try:
            return self.clients("iam").get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                raise Missing(
                    f"Role {name}, {whose}, does not exist: create the function with a new role (step 4)."
                ) from None
            raise

    def role_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """Every permissions policy of the role, inline and attached, labelled for messages."""
        return self.once("role_documents", self._role_documents)

    def _role_documents(self) -> list[tuple[str, dict[str, Any]]]:
        iam = self.clients("iam")
        name = self.role()["RoleName"]
        documents = []
        for policy_name in paginate(iam, "list_role_policies", "PolicyNames", RoleName=name):
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            documents.append((f"inline policy {policy_name}", parse_document(document)))
        for attached in paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            documents.append(
                (f"managed policy {attached['PolicyName']}", parse_document(version["PolicyVersion"]["Document"]))
            )
        return documents

    def mapping(self) -> dict[str, Any]:
        """The trigger from the order queue to the function."""
        return self.once("mapping", self._mapping)

    def _mapping(self) -> dict[str, Any]:
        function = self.function()
        queue = self.queue()
        mappings = self.queue_mappings()
        for mapping in mappings:
            if function_name_of(mapping.get("FunctionArn", "")) == function.name:
                return mapping
        others = sorted({function_name_of(m.get("FunctionArn", "")) for m in mappings})
        elsewhere = f" (it triggers {', '.join(others)} instead)" if others else ""
        raise Missing(
            f"Queue {queue.name} has no trigger to function {function.name}{elsewhere}: in the Lambda console, "
            f"Add trigger, SQS, {queue.name} (step 4)."
        )


def function_name_of(function_arn: str) -> str:
    """The function name in a function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`)."""
    parts = function_arn.split(":")
    return parts[6] if len(parts) > 6 else function_arn
