"""Templates and JSONPaths of the ``http`` destination: compiled once, when the config is read.

Request paths and bodies are Jinja templates run in jinja2's sandbox (as destinations.yml itself
is rendered), with ``StrictUndefined`` so a misspelt field is an error instead of an empty string.
``tojson`` is replaced by a compact JSON encoder that keeps ``<``, ``>``, ``&`` and ``'`` as they are
(jinja's own escapes them for HTML, which an API would store literally) and refuses NaN.
JSONPaths are jsonpath-ng's extended syntax (filters such as ``$.errors[?(@.code == 'X')]``).

Syntax errors surface as ``ConfigError`` naming ``destinations.yml: <destination>.<key>``;
failures while rendering a batch surface as ``DestinationError`` naming the same key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.sandbox
from jsonpath_ng import JSONPath
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from dbt_activate.errors import ConfigError, DestinationError

SOURCE = "destinations.yml"


def to_json(value: Any) -> str:
    """The ``tojson`` filter: compact JSON, non-ASCII kept, NaN refused (values are already JSON-ready)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _environment() -> jinja2.sandbox.SandboxedEnvironment:
    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                              keep_trailing_newline=False)
    env.filters["tojson"] = to_json
    return env


_ENV = _environment()


class Template:
    """One compiled template and the config key it came from (for error messages)."""

    def __init__(self, text: str, location: str) -> None:
        self.text = text
        self.location = location
        try:
            self._template = _ENV.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"invalid Jinja template: {exc.message} (template line {exc.lineno})",
                              location=f"{SOURCE}: {location}") from None

    def render(self, context: Mapping[str, Any]) -> str:
        try:
            return self._template.render(context)
        except jinja2.UndefinedError as exc:
            raise DestinationError(f"{SOURCE}: {self.location}: {exc.message}; the template sees "
                                   f"{_names(context)}") from None
        except (jinja2.TemplateError, TypeError, ValueError) as exc:  # sandbox refusals, tojson of NaN…
            raise DestinationError(f"{SOURCE}: {self.location}: cannot render: {exc}") from None


def _names(context: Mapping[str, Any]) -> str:
    found = ", ".join(sorted(context))
    record = context.get("record") or next(iter(context.get("records") or []), None)
    if isinstance(record, Mapping):
        found += f" (record fields: {', '.join(sorted(record))})"
    return found


class Path:
    """One compiled JSONPath and the config key it came from."""

    def __init__(self, expression: str, location: str) -> None:
        self.expression = expression
        self.location = location
        try:
            self._path: JSONPath = parse_jsonpath(expression)
        except Exception as exc:  # jsonpath-ng raises plain Exceptions for lexer and parser errors
            raise ConfigError(f"invalid JSONPath {expression!r}: {exc}", location=f"{SOURCE}: {location}") from None

    def find(self, data: Any) -> list[Any]:
        return [match.value for match in self._path.find(data)]

    def first(self, data: Any) -> Any:
        found = self.find(data)
        return found[0] if found else None
