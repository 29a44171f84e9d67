"""Tables of moto's attributes that a module of the local cloud replaces, written once.

Each patching module lists its `Patch`es (owner, attribute, replacement) in one `PatchTable`; its
`install()` puts them in place and its `problems()` reports from the same table what a moto release
no longer has, so a replacement cannot be installed without being checked. A replacement that is a
`property` needs a property to replace; any other needs something callable, except where labkit
adds an attribute moto never had (`added`). What is judged is what the owner held when the table was
built, at import: moto's own, whatever has been installed over it since.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Patch:
    """One attribute of a moto class or module (*owner*.*name*) and what labkit puts there."""

    owner: Any
    name: str
    replacement: Any
    # moto has no attribute of this name of its own: labkit adds one, so there is nothing to check.
    added: bool = False


class PatchTable:
    """A module's patches, installed in the order given and checked against what they replace."""

    def __init__(self, *patches: Patch, gone: str | None = None) -> None:
        """*gone* words the line for a missing callable (see `gone_lines`); the default suits most modules."""
        self.patches = patches
        self._gone = gone
        self._replaced = tuple(getattr(patch.owner, patch.name, None) for patch in patches)

    def install(self) -> None:
        """Put every replacement in place."""
        for patch in self.patches:
            setattr(patch.owner, patch.name, patch.replacement)

    def missing(self) -> list[str]:
        """One line per replaced attribute that moto no longer has in the kind the replacement needs."""
        found = []
        for patch, replaced in zip(self.patches, self._replaced, strict=True):
            if patch.added:
                continue
            if isinstance(patch.replacement, property):
                if not isinstance(replaced, property):
                    found.append(f"moto's {patch.owner.__name__}.{patch.name} is no longer a property")
            elif not callable(replaced):
                found.append(_gone_line(patch.owner, patch.name, self._gone))
        return found


def gone_lines(needed: Iterable[tuple[Any, str]], gone: str | None = None) -> list[str]:
    """One line per (owner, name) whose owner has no callable of that name.

    *gone* is a format with `{owner}` (the class's or module's name), `{module}` (the module it is
    in) and `{name}`; by default "moto Owner.name is gone", or "moto.module.name is gone" for a module.
    """
    return [_gone_line(owner, name, gone) for owner, name in needed if not callable(getattr(owner, name, None))]


def _gone_line(owner: Any, name: str, gone: str | None) -> str:
    module = owner.__name__ if inspect.ismodule(owner) else owner.__module__
    if gone is None:
        gone = "{module}.{name} is gone" if inspect.ismodule(owner) else "moto {owner}.{name} is gone"
    return gone.format(owner=owner.__name__, module=module, name=name)
