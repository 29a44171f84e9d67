"""What the facade (`labkit.Lab`) offers of the pipeline as code, on the lab's own backend: notebook 09's calls.

A mixin: `Lab` inherits it and gives it `config`, `clients` and, in-process, `cloud`. Stacks are named
for a prefix as `labkit.iac.stack_name` says (`<prefix>-OrdersLab`), the prefix passed to the template's
`Prefix` parameter, so a stack's pipeline is the one `lab.for_prefix(prefix)` sees and grades.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.config import Config
from labkit.iac.diff import diff_templates
from labkit.iac.export import Exported, export_template
from labkit.iac.lint import Finding, lint_template
from labkit.iac.names import PREFIX_PARAMETER, TEMPLATE_PATH, stack_name
from labkit.iac.stacks import StackResult, delete_stack, deploy_stack, stack_events, stack_resources
from labkit.session import Clients

if TYPE_CHECKING:
    import pandas as pd


class StackMethods:
    """Deploy, watch, list, delete, export, lint and compare, through the lab's clients."""

    config: Config
    clients: Clients
    cloud: Any

    def deploy_stack(
        self,
        template: Path | str | Mapping[str, Any] | None = None,
        prefix: str | None = None,
        parameters: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 300,
    ) -> StackResult:
        """Deploy *template* (a file, its text or a dict; default: infra/template.yaml) as the stack of *prefix* (default: this lab's).

        Its `Prefix` parameter is set to *prefix* and the stack is called `<prefix>-OrdersLab`; local
        code is packaged to S3 first, as `sam deploy` does. A rollback is a result (`.ok` False,
        `.describe()` says why), not an error.
        """
        config = self.config.with_(prefix=self.config.prefix if prefix is None else prefix)
        values = {PREFIX_PARAMETER: config.prefix, **(parameters or {})}
        result = deploy_stack(
            self.clients, template or TEMPLATE_PATH, stack_name(config), values, wait=wait, timeout=timeout
        )
        if self.cloud is not None:
            self.cloud.service.refresh()
        return result

    def stack_events(self, prefix: str | None = None) -> pd.DataFrame:
        """The events of *prefix*'s stack (default: this lab's), oldest first, as a table."""
        import pandas as pd

        events = stack_events(self.clients, self._stack_name(prefix))
        return pd.DataFrame(events, columns=["time", "resource", "type", "status", "reason"])

    def stack_resources(self, prefix: str | None = None) -> pd.DataFrame:
        """The resources of *prefix*'s stack (default: this lab's): logical id, type, physical id, status."""
        import pandas as pd

        rows = stack_resources(self.clients, self._stack_name(prefix))
        return pd.DataFrame(rows, columns=["resource", "type", "physical_id", "status", "reason"])

    def delete_stack(self, prefix: str | None = None, wait: bool = True) -> bool:
        """Delete *prefix*'s stack (default: this lab's) and all it made; True if it existed."""
        return delete_stack(self.clients, self._stack_name(prefix), wait=wait)

    def export_template(self, path: Path | str | None = None) -> Exported:
        """A template of this lab's pipeline as built (any way), written to *path* with its code if given."""
        exported = export_template(self.config, self.clients)
        if path is not None:
            exported.write(Path(path))
        return exported

    @staticmethod
    def lint_template(template: Path | str | None = None) -> list[Finding]:
        """cfn-lint's findings for *template* (default: infra/template.yaml); empty when it is clean."""
        return lint_template(template or TEMPLATE_PATH)

    @staticmethod
    def diff_templates(left: Any, right: Any) -> pd.DataFrame:
        """How *right* differs from *left* (paths, texts or dicts), resource by resource, as a table."""
        import pandas as pd

        rows = [
            {
                "resource": d.resource,
                "type": d.type,
                "change": d.kind,
                "property": d.path,
                "left": d.left,
                "right": d.right,
            }
            for d in diff_templates(left, right)
        ]
        return pd.DataFrame(rows, columns=["resource", "type", "change", "property", "left", "right"])

    def _stack_name(self, prefix: str | None) -> str:
        return stack_name(self.config.with_(prefix=self.config.prefix if prefix is None else prefix))
