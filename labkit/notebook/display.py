"""How notebook helpers show things: plain notes, highlighted code and JSON."""

from __future__ import annotations

import json
import re
from typing import Any


class Note(str):
    """Text a notebook shows as it is, without quotes."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def ok(*lines: str) -> Note:
    """A note of passed checks, one ✓ line each."""
    return Note("\n".join(f"✓ {line}" for line in lines))


class CodeBlock:
    """Source code shown as a highlighted Markdown code block in a notebook, as plain text elsewhere.

    Markdown keeps the saved output the same whichever highlighter version runs the notebook.
    """

    def __init__(self, source: str, language: str = "python") -> None:
        self.data = source
        self.language = language

    def _repr_markdown_(self) -> str:
        longest = max((len(run) for run in re.findall(r"`+", self.data)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{self.language}\n{self.data.rstrip()}\n{fence}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.data)


def show_code(source: str, language: str = "python") -> CodeBlock:
    """Source code, highlighted."""
    return CodeBlock(source, language)


def show_json(value: Any) -> CodeBlock:
    """A JSON document (a policy, an order), indented and highlighted."""
    return show_code(json.dumps(value, indent=2, ensure_ascii=False), language="json")
