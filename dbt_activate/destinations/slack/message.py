"""Slack messages from Jinja templates (pure): one per row, or one digest per batch.

Templates run in Jinja's ``SandboxedEnvironment`` (as destinations.yml itself is rendered), with
``StrictUndefined`` so a misspelt column is an error, not an empty string. Variables:

=========  =========================================================================
row        (``message: row``) the record's fields by destination field name, typed as
           the warehouse returned them (``{% if row.arr > 10000 %}`` works)
key        (row) the record's key
rows       (``message: digest``) the batch's records, a list of such mappings
count      (digest) how many records the message announces
sync       the sync's name; ``object``: the sync's object; ``operation``: create/append
=========  =========================================================================

Whatever a ``{{ … }}`` prints goes through ``finalize``: NULL prints as nothing, dates as ISO 8601,
and ``&``, ``<``, ``>`` are escaped as Slack's mrkdwn wants, so a value from the model can neither
break a link nor ping ``<!channel>``; the template's own text (``<https://…|link>``) is kept as
written. ``blocks`` (optional Block Kit) is a YAML list whose strings are rendered the same way.
Slack truncates text over 40,000 characters; a digest that would exceed it is cut with a note.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import jinja2
import jinja2.sandbox

from dbt_activate.errors import ConfigError

MAX_TEXT = 40_000  # Slack truncates longer messages
DEFAULT_ROW = ("*{{ sync }}*: new {{ object }} record `{{ key }}`"
               "{% for k, v in row.items() %}\n• {{ k }}: {{ v }}{% endfor %}")
DEFAULT_DIGEST = ("*{{ sync }}*: {{ count }} new {{ object }} record(s)"
                  "{% for r in rows %}\n•{% for v in r.values() %} {{ v }}{% if not loop.last %} ·{% endif %}"
                  "{% endfor %}{% endfor %}")


class EmptyMessage(ValueError):
    """The template rendered nothing: Slack would answer ``no_text``."""


def escape(text: str) -> str:
    """Slack mrkdwn control characters (api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


class Templates:
    """The compiled ``text`` and ``blocks`` templates of one destination."""

    def __init__(self, name: str, text: str | None, blocks: Any, digest: bool) -> None:
        env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=_display,
                                                  autoescape=False, keep_trailing_newline=False)
        self.name = name
        self.text = _compile(env, text or (DEFAULT_DIGEST if digest else DEFAULT_ROW), f"{name}.text")
        self.blocks = _compile(env, blocks, f"{name}.blocks")

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The webhook payload ``{"text", "blocks"?}``; ``EmptyMessage`` when there is nothing to say."""
        try:
            text = self.text.render(context).strip()
            blocks = _render(self.blocks, context) if self.blocks is not None else None
        except jinja2.UndefinedError as exc:
            raise ValueError(f"the template uses an undefined value: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise ValueError(f"the template failed: {exc}") from None
        if not text and not blocks:
            raise EmptyMessage("no_text: the template rendered an empty message")
        if len(text) > MAX_TEXT:
            note = "\n… (cut: Slack shows at most 40,000 characters)"
            text = text[:MAX_TEXT - len(note)] + note
        payload: dict[str, Any] = {"text": text}
        if blocks:
            payload["blocks"] = blocks
        return payload


def row_context(target_sync: str, obj: str, operation: str, key: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {"sync": target_sync, "object": obj, "operation": operation, "key": key, "row": dict(values)}


def digest_context(target_sync: str, obj: str, operation: str,
                   rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"sync": target_sync, "object": obj, "operation": operation, "rows": [dict(r) for r in rows],
            "count": len(rows)}


def _compile(env: jinja2.Environment, node: Any, location: str) -> Any:
    if isinstance(node, str):
        try:
            return env.from_string(node)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template syntax error on line {exc.lineno}: {exc.message}", location=location) from None
    if isinstance(node, Mapping):
        return {k: _compile(env, v, f"{location}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_compile(env, v, f"{location}[{i}]") for i, v in enumerate(node)]
    return node


def _render(node: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(node, jinja2.Template):
        return node.render(context)
    if isinstance(node, Mapping):
        return {k: _render(v, context) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, context) for v in node]
    return node
