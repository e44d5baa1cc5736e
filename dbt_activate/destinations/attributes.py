"""A record as a vendor's standard attributes plus custom ones, for vendors that keep the two apart.

Intercom (``custom_attributes``) and Zendesk (``user_fields``, ``organization_fields``) take a
record as its standard attributes at the top and every other mapped field in one custom object.
The rules they share are here: the identity is sent as text and must not be empty (the record
could not be found), a NULL standard attribute that identifies the record (or that the vendor
refuses blank) is left out rather than sent, and a clear empties every mapped field but those.
How a value is encoded stays the vendor's (``convert``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from dbt_activate.core.values import RejectedValue


def split_attributes(values: Mapping[str, Any], identity: str, *, standard: Collection[str], keep: Collection[str],
                     identity_text: Callable[[Any], str], empty: str, convert: Callable[[str, Any], Any],
                     convert_custom: Callable[[str, Any], Any] | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(standard attributes, custom attributes) of a record, in the order of ``values``.

    The ``identity`` field is ``identity_text`` (``empty`` is the rejection when that is blank); a
    NULL in a ``keep`` attribute is left out; other values go through ``convert`` (``convert_custom``
    for custom ones, when it differs). A value that cannot be sent raises ``RejectedValue``."""
    found: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in values.items():
        if name == identity:
            text = identity_text(value)
            if not text:
                raise RejectedValue(empty)
            found[name] = text
        elif name in standard:
            if value is None and name in keep:
                continue
            found[name] = convert(name, value)
        else:
            custom[name] = (convert_custom or convert)(name, value)
    return found, custom


def cleared_attributes(fields: Iterable[str], identity: str, *, standard: Collection[str], keep: Collection[str],
                       blank: Callable[[str], Any] = lambda name: None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(standard attributes, custom attributes) that empty every mapped field but the identity and the
    ``keep`` ones: a standard attribute takes ``blank(name)`` (null, or ``[]`` for a list), a custom one null."""
    found: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name in fields:
        if name == identity or name in keep:
            continue
        if name in standard:
            found[name] = blank(name)
        else:
            custom[name] = None
    return found, custom
