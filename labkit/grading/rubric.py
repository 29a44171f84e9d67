"""The grading rubric: points per check and the requirements checks compare against, kept as data.

The default lives in `rubric.json` beside this module; an instructor's JSON file overrides any of its
keys (under "points", only the check ids it names), so nobody edits code to change a grade.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

from labkit.errors import ConfigError

DEFAULT_RUBRIC_PATH = Path(__file__).resolve().parent / "rubric.json"
_MIN_PYTHON_RE = re.compile(r"^3\.(\d+)$")
_ORDER_FIELDS = ("orderId", "userId", "itemName", "quantity", "timestamp")


@dataclass(frozen=True)
class Rubric:
    """Points per check id and the values the checks require."""

    points: Mapping[str, float]
    batch_size: int
    max_receive_count: int
    min_python: str
    handler_function: str
    recommended_visibility_factor: int
    table_actions: tuple[str, ...]
    queue_actions: tuple[str, ...]
    log_actions: tuple[str, ...]
    sample_order: Mapping[str, Any]
    probe_margin_seconds: float
    source: str = "default"

    @property
    def min_python_minor(self) -> int:
        """The smallest Python 3 minor version the handler runs on."""
        match = _MIN_PYTHON_RE.match(self.min_python)
        assert match is not None  # validated when loaded
        return int(match.group(1))

    def points_for(self, check_id: str) -> float:
        """The points a check is worth."""
        return self.points[check_id]


def default_rubric() -> Rubric:
    """The rubric shipped with labkit."""
    return load_rubric(None)


def load_rubric(source: Rubric | str | Path | Mapping[str, Any] | None = None) -> Rubric:
    """The default rubric, overridden by *source*: a JSON file path, a mapping, or a Rubric (returned as is).

    Raises:
        ConfigError: the file cannot be read, is not JSON, or names an unknown key or check id.
    """
    if isinstance(source, Rubric):
        return source
    defaults = _read(DEFAULT_RUBRIC_PATH)
    if source is None:
        return _build(defaults, "default")
    if isinstance(source, Mapping):
        override, label = dict(source), "the rubric given"
    else:
        override, label = _read(Path(source)), str(source)
    return _build(_merge(defaults, override, label), label)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the rubric {path}: {exc.strerror}.") from exc
    except ValueError as exc:
        raise ConfigError(f"The rubric {path} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"The rubric {path} must hold a JSON object, like labkit's own rubric.json.")
    return data


def _merge(defaults: dict[str, Any], override: dict[str, Any], label: str) -> dict[str, Any]:
    unknown = sorted(set(override) - set(defaults))
    if unknown:
        raise ConfigError(f"Rubric {label} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(defaults)}.")
    merged = dict(defaults)
    for key, value in override.items():
        if key == "points":
            if not isinstance(value, dict):
                raise ConfigError(f'Rubric {label}: "points" must map check ids to numbers.')
            ids = sorted(set(value) - set(defaults["points"]))
            if ids:
                raise ConfigError(
                    f"Rubric {label} gives points to unknown check id(s) {', '.join(ids)}; "
                    f"known ids: {', '.join(defaults['points'])}."
                )
            merged["points"] = {**defaults["points"], **value}
        else:
            merged[key] = value
    return merged


def _build(data: dict[str, Any], label: str) -> Rubric:
    def fail(key: str, what: str) -> ConfigError:
        return ConfigError(f"Rubric {label}: {key!r} must be {what} (got {data.get(key)!r}).")

    points = data.get("points")
    if not isinstance(points, dict) or not all(_is_number(v) and v >= 0 for v in points.values()):
        raise fail("points", "an object of check ids to numbers of 0 or more")
    batch = data.get("batch_size")
    if not _is_int(batch) or not 1 <= batch <= 10:
        raise fail("batch_size", "a whole number from 1 to 10")
    receives = data.get("max_receive_count")
    if not _is_int(receives) or not 1 <= receives <= 1000:
        raise fail("max_receive_count", "a whole number from 1 to 1000")
    if not isinstance(data.get("min_python"), str) or not _MIN_PYTHON_RE.match(data["min_python"]):
        raise fail("min_python", 'a Python 3 version such as "3.11"')
    if not isinstance(data.get("handler_function"), str) or not data["handler_function"].isidentifier():
        raise fail("handler_function", "a Python function name")
    factor = data.get("recommended_visibility_factor")
    if not _is_int(factor) or factor < 1:
        raise fail("recommended_visibility_factor", "a whole number of 1 or more")
    actions = {}
    for key in ("table_actions", "queue_actions", "log_actions"):
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(a, str) and ":" in a for a in value):
            raise fail(key, 'a list of IAM actions such as "dynamodb:PutItem"')
        actions[key] = tuple(value)
    order = data.get("sample_order")
    if not isinstance(order, dict) or any(not order.get(k) for k in _ORDER_FIELDS if k != "quantity"):
        raise fail("sample_order", f"an order with {', '.join(_ORDER_FIELDS)}")
    if not _is_int(order.get("quantity")):
        raise fail("sample_order", "an order whose quantity is a whole number")
    margin = data.get("probe_margin_seconds")
    if not _is_number(margin) or margin < 0:
        raise fail("probe_margin_seconds", "a number of seconds")
    return Rubric(
        points=MappingProxyType(dict(points)),
        batch_size=batch,
        max_receive_count=receives,
        min_python=data["min_python"],
        handler_function=data["handler_function"],
        recommended_visibility_factor=factor,
        sample_order=MappingProxyType(dict(order)),
        probe_margin_seconds=float(margin),
        source=label,
        **actions,
    )


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
