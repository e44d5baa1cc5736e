"""Emulator of Braze's user data REST endpoints ``/users/track`` and ``/users/delete``.

Follows the contract in ``shared/contracts/SUMMARY.md`` §4, from braze-inc/braze-docs
(``_docs/_api/endpoints/user_data/post_user_track.md`` @ 009c6ea3, ``_docs/_api/api_limits.md`` @
01fa1b89), braze.com/docs/api/api_limits, braze.com/docs/api/errors and
braze.com/docs/api/endpoints/user_data/post_user_delete.

Emulated:

- ``POST /users/track`` with ``Authorization: Bearer <REST API key>``: ``attributes``, ``events`` and
  ``purchases`` arrays of at most ``max_objects`` (75) objects each, or in total with
  ``objects_cap="total"`` (the translated pages' reading); more is a fatal 400. Each object names
  its user by exactly one of ``external_id``, ``user_alias`` (``{alias_name, alias_label}``),
  ``braze_id``, ``email`` or ``phone`` (email wins over phone). Attributes are processed before
  events. ``_update_existing_only: true`` skips users that do not exist, silently; an alias-only or
  email-only user is created only with ``false``. A null attribute value removes the attribute.
  Events need ``name`` and an ISO 8601 ``time``.
- Answers: ``201 {"message": "success", "attributes_processed": n, "events_processed": n,
  "purchases_processed": n}``; with invalid objects the same plus ``errors: [{"type", "input_array",
  "index"}]`` (minor errors; the other objects are processed); when no object is valid, the fatal
  ``400 {"message": "Valid data must be provided in the 'attributes', 'events', or 'purchases'
  fields.", "errors": [...]}``. The ``type`` texts besides the identifier one are illustrative.
- ``POST /users/delete``: one of ``external_ids``, ``user_aliases``, ``braze_ids``,
  ``email_addresses``, ``phone_numbers``, at most 50; ``{"deleted": n, "message": "success"}``.
  Per braze-inc/braze-docs ``_docs/_api/endpoints/user_data/post_user_delete.md`` @ 577d633f
  ("Deleting users by email addresses and phone numbers";
  braze.com/docs/api/endpoints/user_data/post_user_delete), an email or phone entry is an object
  ``{"email"|"phone": …, "prioritization": [...]}``, the array ordered, its values ``identified``,
  ``unidentified``, ``most_recently_updated``, with at most one of the first two; anything else
  (a bare address) is a fatal ``400 {"message": "Bad Request", "errors": [...]}``, the fatal shape
  of braze.com/docs/api/errors ("400 Bad Request: Bad syntax"). Each prioritization narrows the
  users sharing the address in order (``identified``: those with an external_id, ``unidentified``:
  those without, when any; ``most_recently_updated``: the latest); when more than one user is left
  nobody is deleted ("deleting users will not occur if more than one user matches a
  prioritization"). The narrowing-only-when-some-match reading is ours [R].
- Rate limit: ``rate_limit=True`` is 3,000 requests per 3 s (the workspace's ``/users/track`` limit);
  ``/users/delete`` has its own group (``delete_rate_limit=True``: 20,000/min). Every answer carries
  ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (UTC epoch seconds);
  throttling is a 429 with them and no ``Retry-After``.

Not emulated: purchases are validated and counted but not stored; subscription groups, push tokens,
nested-attribute rules, ``$add``/``$remove`` array operations, email normalisation, merges, MAU
contract limits, the hourly and daily limits of some contracts.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.testing.limits import Decision, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

ARRAYS = ("attributes", "events", "purchases")
IDENTIFIED_BY = ("external_id", "user_alias", "braze_id", "email", "phone")
DELETE_FIELDS = {"external_ids": "external_id", "user_aliases": "user_alias", "braze_ids": "braze_id",
                 "email_addresses": "email", "phone_numbers": "phone"}
PRIORITIZATIONS = ("identified", "unidentified", "most_recently_updated")
NO_IDENTIFIER = "'external_id' or 'braze_id' or 'user_alias' is required"
NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
_RESERVED = frozenset({"_update_existing_only", "push_token_import", "braze_id", "external_id", "user_alias"})


@dataclass
class BrazeUser:
    braze_id: str
    external_id: str | None = None
    alias: tuple[str, str] | None = None  # (alias_label, alias_name)
    attributes: dict[str, Any] = field(default_factory=dict)
    updated: int = 0  # order of the last update: by-email writes go to the most recent profile


class BrazeEmulator(Emulator):
    """Braze ``/users/track`` and ``/users/delete``; ``max_objects`` per array (``objects_cap="total"``:
    per request)."""

    vendor = "braze"
    default_rate_limit = RateLimit(3000, 3.0)

    def __init__(self, token: str | None = "test-token", *, max_objects: int = 75, objects_cap: str = "array",
                 delete_rate_limit: RateLimitSpec = None, **knobs: Any) -> None:
        super().__init__(token=token, **knobs)
        if objects_cap not in ("array", "total"):
            raise ValueError("objects_cap must be 'array' or 'total'")
        self.max_objects, self.objects_cap = max_objects, objects_cap
        self.users: dict[str, BrazeUser] = {}  # braze_id -> user
        self.events: list[dict[str, Any]] = []  # {"braze_id", "external_id", "name", "time", "properties"}
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self.set_group_limit("delete", RateLimit(20000, 60.0) if delete_rate_limit is True else delete_rate_limit)
        self.route("POST", r"/users/track", self._track, writes=True)
        self.route("POST", r"/users/delete", self._delete, writes=True, group="delete")

    # -- accessors for tests -------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every user as ``{"braze_id", "external_id", "user_alias", **attributes}``, in creation order."""
        with self.lock:
            return [{"braze_id": u.braze_id, "external_id": u.external_id,
                     "user_alias": None if u.alias is None else {"alias_label": u.alias[0], "alias_name": u.alias[1]},
                     **u.attributes} for u in self.users.values()]

    def user(self, external_id: str) -> dict[str, Any] | None:
        """The attributes of the user with ``external_id``."""
        with self.lock:
            found = next((u for u in self.users.values() if u.external_id == external_id), None)
            return None if found is None else dict(found.attributes)

    def add_user(self, external_id: str | None = None, **attributes: Any) -> str:
        """Seed a user without HTTP; returns its braze_id."""
        with self.lock:
            user = self._new_user(external_id=external_id)
            user.attributes.update(attributes)
            return user.braze_id

    # -- /users/track --------------------------------------------------------------------------

    def _track(self, req: Request) -> Response:
        body = req.json_object()
        arrays = {name: body.get(name) or [] for name in ARRAYS}
        for name, items in arrays.items():
            if not isinstance(items, list):
                raise ApiError(400, f"'{name}' must be an array")
        if self.objects_cap == "total" and sum(len(v) for v in arrays.values()) > self.max_objects:
            raise ApiError(400, f"Too many objects in request: at most {self.max_objects} in total")
        for name, items in arrays.items():
            if len(items) > self.max_objects:
                raise ApiError(400, f"Too many {name} in request: at most {self.max_objects}")
        errors: list[dict[str, Any]] = []
        processed = dict.fromkeys(ARRAYS, 0)
        total = sum(len(v) for v in arrays.values())
        with self.lock:
            self.count_records(total)
            position = 0
            for name in ARRAYS:  # Braze's order: attributes, then events, then purchases
                for index, item in enumerate(arrays[name]):
                    problem = ("injected failure" if req.fails(position, total)
                               else self._apply(name, item))
                    position += 1
                    if problem is None:
                        processed[name] += 1
                    else:
                        errors.append({"type": problem, "input_array": name, "index": index})
        if errors and not any(processed.values()):
            raise ApiError(400, NO_VALID_DATA, errors=errors)
        out: dict[str, Any] = {"message": "success", **{f"{n}_processed": c for n, c in processed.items() if arrays[n]}}
        if errors:
            out["errors"] = errors
        return Response.json(out, 201)

    def _apply(self, array: str, item: Any) -> str | None:
        """Apply one object; the minor error's ``type`` if it is invalid."""
        if not isinstance(item, dict):
            return f"{array} objects must be JSON objects"
        key = self._identifier(item)
        if key is None:
            return NO_IDENTIFIER
        if array == "attributes":
            return self._attributes(item, key)
        if not isinstance(item.get("name") if array == "events" else item.get("product_id"), str):
            return "'name' is required" if array == "events" else "'product_id' is required"
        if not _iso_time(item.get("time")):
            return "'time' must be an ISO 8601 time"
        if array == "events" and not isinstance(item.get("properties", {}), dict):
            return "'properties' must be an object"
        user = self._find(key) or self._new_user(key)
        if array == "events":
            self.events.append({"braze_id": user.braze_id, "external_id": user.external_id, "name": item["name"],
                                "time": item["time"], "properties": dict(item.get("properties") or {})})
        return None

    def _attributes(self, item: dict[str, Any], key: tuple[str, Any]) -> str | None:
        for name, value in item.items():
            if isinstance(value, float) and not math.isfinite(value):
                return f"'{name}' is not a valid value"
        user = self._find(key)
        if user is None:
            if item.get("_update_existing_only", key[0] == "user_alias") is True:
                return None  # update-only mode: an unknown user is skipped without an error
            if key[0] == "braze_id":
                return f"braze_id {key[1]} does not exist"
            user = self._new_user(key)
        for name, value in item.items():
            if name in _RESERVED:
                continue
            if value is None:
                user.attributes.pop(name, None)
            else:
                user.attributes[name] = value
        user.updated = next(self._clock)
        return None

    def _identifier(self, item: Mapping[str, Any]) -> tuple[str, Any] | None:
        for name in IDENTIFIED_BY:
            value = item.get(name)
            if name == "user_alias":
                if isinstance(value, dict) and value.get("alias_name") and value.get("alias_label"):
                    return name, (str(value["alias_label"]), str(value["alias_name"]))
            elif isinstance(value, str) and value:
                return name, value
        return None

    def _find(self, key: tuple[str, Any]) -> BrazeUser | None:
        kind, value = key
        if kind == "braze_id":
            return self.users.get(value)
        if kind == "external_id":
            return next((u for u in self.users.values() if u.external_id == value), None)
        if kind == "user_alias":
            return next((u for u in self.users.values() if u.alias == value), None)
        found = [u for u in self.users.values() if u.attributes.get(kind) == value]
        return max(found, key=lambda u: u.updated) if found else None  # the most recently updated profile

    def _new_user(self, key: tuple[str, Any] | None = None, external_id: str | None = None) -> BrazeUser:
        user = BrazeUser(f"{next(self._ids):024x}", external_id=external_id, updated=next(self._clock))
        if key is not None:
            kind, value = key
            if kind == "external_id":
                user.external_id = value
            elif kind == "user_alias":
                user.alias = value
            elif kind in ("email", "phone"):
                user.attributes[kind] = value
        self.users[user.braze_id] = user
        return user

    # -- /users/delete -------------------------------------------------------------------------

    def _delete(self, req: Request) -> Response:
        body = req.json_object()
        given = [f for f in DELETE_FIELDS if body.get(f)]
        if len(given) != 1:
            raise ApiError(400, "Exactly one of external_ids, user_aliases, braze_ids, email_addresses or "
                                "phone_numbers must be given")
        values = body[given[0]]
        if not isinstance(values, list) or len(values) > 50:
            raise ApiError(400, f"'{given[0]}' must be an array of at most 50 identifiers")
        kind = DELETE_FIELDS[given[0]]
        if kind in ("email", "phone"):
            problems = [f"{given[0]}[{i}]: {p}" for i, v in enumerate(values) if (p := _address_problem(kind, v))]
            if problems:
                raise ApiError(400, "Bad Request", errors=problems)
        deleted = 0
        with self.lock:
            self.count_records(len(values))
            for value in values:
                users: list[BrazeUser | None]
                if kind == "user_alias":
                    key = self._identifier({"user_alias": value})
                    users = [self._find(key)] if key is not None else []
                elif kind in ("email", "phone"):
                    users = list(self._prioritized(kind, value[kind], value["prioritization"]))
                else:
                    users = [self._find((kind, value))]
                for user in users:
                    if user is not None and self.users.pop(user.braze_id, None) is not None:
                        deleted += 1
        return Response.json({"deleted": deleted, "message": "success"}, 201)

    def _prioritized(self, kind: str, address: str, prioritization: list[str]) -> list[BrazeUser]:
        """The user an email/phone delete names: none when the prioritization leaves several."""
        found = [u for u in self.users.values() if u.attributes.get(kind) == address]
        for rule in prioritization:
            if rule == "most_recently_updated" and found:
                found = [max(found, key=lambda u: u.updated)]
            else:
                narrowed = [u for u in found if (u.external_id is not None) == (rule == "identified")]
                found = narrowed or found
        return found if len(found) == 1 else []

    # -- vendor shapes -------------------------------------------------------------------------

    def error_response(self, err: ApiError) -> Response:
        return Response.json({"message": err.message, **err.extra}, err.status)

    def authenticate(self, request: Request) -> Response | None:
        if self.token is None or self.bearer_token(request) == self.token:
            return None
        return self.error_response(ApiError(401, "Invalid API key"))

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "Internal Server Error"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"No route for {method} {path}"))

    def throttled_response(self, decision: Decision) -> Response:
        return Response.json({"message": "Rate limit exceeded"}, 429, self.limit_headers(decision))

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        if decision.limit is None:
            return {}
        return {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(math.ceil(time.time() + decision.reset))}


def _address_problem(kind: str, entry: Any) -> str | None:
    """Why an email/phone entry of /users/delete is not ``{kind: text, "prioritization": [...]}``."""
    if not isinstance(entry, dict):
        return f"must be an object with '{kind}' and 'prioritization', got {type(entry).__name__}"
    if not isinstance(entry.get(kind), str) or not entry[kind]:
        return f"'{kind}' is required"
    rules = entry.get("prioritization")
    if not isinstance(rules, list) or not rules or any(r not in PRIORITIZATIONS for r in rules):
        return f"'prioritization' must be a non-empty array of {', '.join(PRIORITIZATIONS)}"
    if "identified" in rules and "unidentified" in rules:
        return "'prioritization' may hold only one of 'identified' and 'unidentified'"
    return None


def _iso_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
