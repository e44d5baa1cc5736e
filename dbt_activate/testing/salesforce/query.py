"""The SOQL subset the emulator answers on ``GET /services/data/vXX.X/query?q=``.

Enough to look records up by external id or email and to read them back in tests:
``SELECT f1, f2 FROM Obj [WHERE cond [AND cond]…] [ORDER BY f [ASC|DESC]] [LIMIT n]`` with
conditions ``f = v``, ``f != v``, ``f IN (v, …)``, ``f NOT IN (…)``, ``f LIKE 'a%'``; values are
quoted strings, numbers, ``true``/``false`` or ``null``. Text comparisons ignore case, as SOQL's do.
No OR, no parentheses, no relationships, no aggregates, no query locator paging.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dbt_activate.testing.messages import ApiError
from dbt_activate.testing.salesforce.schema import SObject

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<dir>ASC|DESC))?)?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^\s*(?P<field>\w+)\s*(?P<op>!=|=|NOT\s+IN|IN|LIKE)\s*(?P<value>.+?)\s*$", re.IGNORECASE)
_VALUE = re.compile(r"'((?:[^'\\]|\\.)*)'|(null|true|false)|(-?\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[str, ...]
    where: tuple[Callable[[dict[str, Any]], bool], ...]
    order: str | None
    descending: bool
    limit: int | None

    def run(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        found = [r for r in records if all(test(r) for test in self.where)]
        if self.order:
            key = self.order
            found.sort(key=lambda r: (r.get(key) is None, str(r.get(key) or "").lower()), reverse=self.descending)
        return found[: self.limit] if self.limit is not None else found


def malformed(message: str) -> ApiError:
    return ApiError(400, message, "MALFORMED_QUERY")


def parse_query(soql: str, resolve: Callable[[str], SObject]) -> Query:
    matched = _QUERY.match(soql)
    if matched is None:
        raise malformed(f"unexpected token in query: {soql[:80]}")
    sobject = resolve(matched["obj"])
    fields = tuple(_field(sobject, name.strip()) for name in matched["fields"].split(","))
    where = tuple(_condition(sobject, text) for text in re.split(r"\s+AND\s+", matched["where"] or "", flags=re.I)
                  if text.strip())
    order = _field(sobject, matched["order"]) if matched["order"] else None
    limit = int(matched["limit"]) if matched["limit"] else None
    return Query(sobject.name, fields, where, order, (matched["dir"] or "").upper() == "DESC", limit)


def _field(sobject: SObject, name: str) -> str:
    found = sobject.field(name)
    if found is None:
        raise ApiError(400, f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
                       "custom field, be sure to append the '__c' after the custom field name.", "INVALID_FIELD")
    return found.name


def _literal(text: str) -> Any:
    matched = _VALUE.fullmatch(text.strip())
    if matched is None:
        raise malformed(f"unexpected value in query: {text}")
    quoted, keyword, number = matched.groups()
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    if keyword is not None:
        return {"null": None, "true": True, "false": False}[keyword.lower()]
    return float(number)


def _same(actual: Any, wanted: Any) -> bool:
    if wanted is None or actual is None:
        return actual is wanted
    if isinstance(wanted, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return float(actual) == wanted
    return str(actual).lower() == str(wanted).lower()


def _condition(sobject: SObject, text: str) -> Callable[[dict[str, Any]], bool]:
    matched = _CONDITION.match(text)
    if matched is None:
        raise malformed(f"unexpected condition: {text}")
    name, op, raw = _field(sobject, matched["field"]), " ".join(matched["op"].upper().split()), matched["value"]
    if op in ("IN", "NOT IN"):
        inner = raw.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise malformed(f"expected a parenthesised list after {op}: {raw}")
        values = [_literal(v.group(0)) for v in _VALUE.finditer(inner[1:-1])]
        if op == "IN":
            return lambda r: any(_same(r.get(name), v) for v in values)
        return lambda r: not any(_same(r.get(name), v) for v in values)
    value = _literal(raw)
    if op == "LIKE":
        pattern = re.compile(re.escape(str(value)).replace("%", ".*").replace("_", "."), re.IGNORECASE)
        return lambda r: r.get(name) is not None and pattern.fullmatch(str(r.get(name))) is not None
    if op == "=":
        return lambda r: _same(r.get(name), value)
    return lambda r: not _same(r.get(name), value)
