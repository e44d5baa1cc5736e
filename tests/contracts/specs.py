"""The vendors' published API contracts (``shared/contracts/``) as checks of captured exchanges.

Three kinds of document, three checkers, one question each: "what in this exchange does the vendor's
own contract refuse?" (an empty list: nothing).

- ``OpenApiContract``: OpenAPI 3 (Pipedrive v1 and v2, Klaviyo, Intercom) through openapi-core:
  the operation must exist; security, parameters and the request body must validate; a response
  whose status the operation documents must validate too (the emulator's answer, which the
  connector parses).
- ``SwaggerBodyContract``: Slack's Swagger 2.0 subset (openapi-core reads no Swagger 2.0). A body
  is checked with jsonschema against the method's ``formData`` arguments and the spec's
  ``definitions``.
- ``DiscoveryContract``: the Google Sheets v4 Discovery document. The method is found by its
  ``flatPath``; its query parameters, request body and response are checked with jsonschema built
  from the document's ``schemas`` (``additionalProperties: false`` where a schema lists its
  properties: Google's JSON APIs refuse unknown field names with a 400).

Where a document is wrong and the vendor is right, ``Allowance`` entries (kept next to each
contract, each naming its evidence) let exactly that finding through; nothing else is waived.

The documents live outside the repository (their licences are the vendors'): ``../shared/contracts``
next to the checkout or one of its parents, or ``$DBT_ACTIVATE_CONTRACTS``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jsonschema  # type: ignore[import-untyped]  # no stubs installed; only tests use it
import yaml
from openapi_core import Config, OpenAPI  # type: ignore[import-untyped]
from openapi_core.templating.paths.exceptions import PathError  # type: ignore[import-untyped]
from openapi_core.testing import MockRequest, MockResponse  # type: ignore[import-untyped]
from werkzeug.datastructures import ImmutableMultiDict  # openapi-core's query type

from tests.contracts.capture import Exchange


def contracts_dir() -> Path | None:
    """``shared/contracts`` beside the checkout (or beside one of its parents), or ``$DBT_ACTIVATE_CONTRACTS``."""
    given = os.environ.get("DBT_ACTIVATE_CONTRACTS")
    if given:
        return Path(given)
    for parent in Path(__file__).resolve().parents[2:]:
        found = parent / "shared" / "contracts"
        if found.is_dir():
            return found
    return None


class Contract(Protocol):
    name: str

    def violations(self, exchange: Exchange) -> list[str]: ...


@dataclass(frozen=True)
class Allowance:
    """A finding the vendor's document gets wrong: which operation, which finding (regexes), and why."""

    method: str  # "*" for any
    path: str  # regex on the request path (full match)
    finding: str  # regex searched in the finding's text
    evidence: str

    def covers(self, exchange: Exchange, finding: str) -> bool:
        return (self.method in ("*", exchange.method) and re.fullmatch(self.path, exchange.path) is not None
                and re.search(self.finding, finding) is not None)


def _load(relative: str) -> dict[str, Any]:
    base = contracts_dir()
    assert base is not None, "shared/contracts not found (set DBT_ACTIVATE_CONTRACTS)"
    path = base / relative
    with path.open(encoding="utf-8") as handle:
        if path.suffix == ".json":  # json.load: the YAML readers refuse Klaviyo's "\ud83d" escapes
            loaded: dict[str, Any] = json.load(handle)
        else:
            loaded = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return loaded


# -- OpenAPI 3 ---------------------------------------------------------------------------------


class OpenApiContract:
    def __init__(self, name: str, document: dict[str, Any], origin: str, allowances: Iterable[Allowance] = ()) -> None:
        self.name, self.origin = name, origin
        self.allowances = tuple(allowances)
        # The documents were validated when copied (shared/contracts/README.md); re-validating a
        # 2.6 MB spec on every run would cost seconds and prove nothing new.
        self.api = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))

    def violations(self, exchange: Exchange) -> list[str]:
        request = MockRequest(self.origin, exchange.method.lower(), exchange.path, args=_multi(exchange.query),
                              headers=exchange.headers, data=exchange.body or None,
                              content_type=exchange.content_type or "application/json")
        findings = [f"request {text}" for error in self.api.iter_request_errors(request) for text in _texts(error)]
        if not any(f.startswith(("request PathNotFound", "request OperationNotFound")) for f in findings):
            response = MockResponse(exchange.response_body, exchange.status, exchange.response_headers,
                                    exchange.response_type or "application/json")
            for error in self.api.iter_response_errors(request, response):
                if type(error).__name__ != "ResponseNotFound":  # a status the operation does not document
                    findings.extend(f"response {text}" for text in _texts(error))
        return [f"{self.name}: {exchange}: {f}" for f in findings
                if not any(a.covers(exchange, f) for a in self.allowances)]


def _multi(query: Iterable[tuple[str, str]]) -> ImmutableMultiDict[str, str]:
    return ImmutableMultiDict(list(query))


def _texts(error: BaseException) -> Iterator[str]:
    """Readable findings of an openapi-core error: one per schema error, with its JSON path."""
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if isinstance(error, PathError) or not schema_errors:
        yield f"{type(error).__name__}: {error}"
        return
    for schema_error in schema_errors:
        for leaf in _leaves(schema_error):
            where = "/".join(str(p) for p in leaf.absolute_path) or "<root>"
            yield f"{type(error).__name__} at {where}: {leaf.message}"


def _leaves(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    if error.context:
        for child in error.context:
            yield from _leaves(child)
    else:
        yield error


# -- Swagger 2.0 (Slack) -----------------------------------------------------------------------


class SwaggerBodyContract:
    """Bodies of one Swagger 2.0 operation, checked as a JSON object of its ``formData`` arguments."""

    def __init__(self, name: str, document: dict[str, Any], operation: str, path: str,
                 overrides: Mapping[str, Any], optional: Iterable[str], evidence: str) -> None:
        self.name, self.path = name, path
        parameters = document["paths"][operation]["post"]["parameters"]
        form = {p["name"]: p for p in parameters if p["in"] == "formData"}
        properties = {n: overrides.get(n, {"type": p["type"]}) for n, p in form.items()}
        required = [n for n, p in form.items() if p.get("required") and n not in set(optional)]
        self.schema = {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False, "definitions": document["definitions"]}
        self.evidence = evidence
        self.validator = jsonschema.Draft4Validator(self.schema)

    def violations(self, exchange: Exchange) -> list[str]:
        if re.fullmatch(self.path, exchange.path) is None:
            return [f"{self.name}: {exchange}: not an endpoint of the contract"]
        if exchange.content_type != "application/json":
            return [f"{self.name}: {exchange}: body is {exchange.content_type!r}, not application/json"]
        return [f"{self.name}: {exchange}: request at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in self.validator.iter_errors(exchange.json())]


# -- Google Discovery (Sheets) -----------------------------------------------------------------


class DiscoveryContract:
    def __init__(self, name: str, document: dict[str, Any], allowances: Iterable[Allowance] = ()) -> None:
        self.name = name
        self.allowances = tuple(allowances)
        self.global_parameters = document.get("parameters", {})
        definitions = {k: _from_discovery(v) for k, v in document["schemas"].items()}
        self.methods = [_DiscoveryMethod(m, definitions) for m in _methods(document)]

    def violations(self, exchange: Exchange) -> list[str]:
        findings = self._findings(exchange)
        return [f"{self.name}: {exchange}: {f}" for f in findings
                if not any(a.covers(exchange, f) for a in self.allowances)]

    def _findings(self, exchange: Exchange) -> list[str]:
        candidates = [m for m in self.methods if m.http_method == exchange.method and m.matches(exchange.path)]
        if not candidates:
            return [f"no method of the document serves {exchange.method} {exchange.path}"]
        method = max(candidates, key=lambda m: m.literal_length)  # values/{range}:append over values/{range}
        findings = []
        for name, value in exchange.query:
            parameter = method.parameters.get(name) or self.global_parameters.get(name)
            if parameter is None or parameter.get("location") != "query":
                findings.append(f"query parameter {name!r} is not a parameter of {method.id}")
            elif "enum" in parameter and value not in parameter["enum"]:
                findings.append(f"query parameter {name}={value!r} is not one of {parameter['enum']}")
        findings.extend(f"query parameter {n!r} is required by {method.id}" for n, p in method.parameters.items()
                        if p.get("required") and p.get("location") == "query" and n not in dict(exchange.query))
        if method.request is not None:
            findings.extend(f"request at {w}: {m}" for w, m in method.request.check(exchange.json()))
        elif exchange.body:
            findings.append(f"{method.id} takes no request body")
        if method.response is not None and 200 <= exchange.status < 300:
            findings.extend(f"response at {w}: {m}" for w, m in method.response.check(exchange.response_json()))
        return findings


class _Schema:
    def __init__(self, ref: str, definitions: Mapping[str, Any]) -> None:
        self.validator = jsonschema.Draft7Validator({"$ref": f"#/definitions/{ref}", "definitions": definitions})

    def check(self, document: Any) -> Iterator[tuple[str, str]]:
        for error in self.validator.iter_errors(document):
            yield "/".join(map(str, error.absolute_path)) or "<root>", error.message


class _DiscoveryMethod:
    def __init__(self, method: Mapping[str, Any], definitions: Mapping[str, Any]) -> None:
        self.id, self.http_method = str(method["id"]), str(method["httpMethod"])
        template = "/" + str(method.get("flatPath") or method["path"])
        self.literal_length = len(re.sub(r"\{[^}]+\}", "", template))
        self.pattern = re.compile("".join(
            "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)))
        self.parameters: Mapping[str, Any] = method.get("parameters", {})
        request, response = method.get("request"), method.get("response")
        self.request = _Schema(request["$ref"], definitions) if request else None
        self.response = _Schema(response["$ref"], definitions) if response else None

    def matches(self, path: str) -> bool:
        return self.pattern.fullmatch(path) is not None


def _methods(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from node.get("methods", {}).values()
    for resource in node.get("resources", {}).values():
        yield from _methods(resource)


def _from_discovery(node: Mapping[str, Any]) -> dict[str, Any]:
    """A Discovery schema as JSON Schema (draft 7)."""
    if "$ref" in node:
        return {"$ref": f"#/definitions/{node['$ref']}"}
    out: dict[str, Any] = {}
    if node.get("type") not in (None, "any"):
        out["type"] = node["type"]
    if "enum" in node:
        out["enum"] = node["enum"]
    if "items" in node:
        out["items"] = _from_discovery(node["items"])
    if "properties" in node:
        out["properties"] = {k: _from_discovery(v) for k, v in node["properties"].items()}
        out["additionalProperties"] = False
    if "additionalProperties" in node:
        out["additionalProperties"] = _from_discovery(node["additionalProperties"])
    return out


# -- the contracts, with their allowances --------------------------------------------------------

V1_FIELD_TIMES = Allowance(
    "GET", r"/v1/\w+Fields", r"^response .* at data/\d+/(add|update)_time: .* is not a 'date-time'",
    "openapi-v1.yaml types a field's add_time/update_time as date-time, but its own example (and the live "
    "API) writes them as '2019-02-04 13:58:03'.")
PIPEDRIVE_V2_ALLOWANCES = (
    Allowance(
        "GET", r"/api/v2/.*", r"^response .* at additional_data/next_cursor: None (for not nullable|is not of type)",
        "openapi-v2.yaml types next_cursor as a string, and its description says it 'will be null if you "
        "have reached the end of the dataset'."),
    Allowance(
        "*", r"/api/v2/(persons|deals)(/\d+)?",
        r"^response .* at data/(org_id|person_id|picture_id|won_time|lost_time|close_time): None "
        r"(for not nullable|is not of type)",
        "openapi-v2.yaml does not mark these response properties nullable, yet a record has no organization, "
        "person, picture or won/lost time until it gets one; openapi-v1.yaml's examples of the same records "
        "show org_id: null, picture_id: null, won_time: null."),
    Allowance(
        "GET", r"/api/v2/(persons|deals)/search", r"^response .* at data/items/\d+/item/(organization|person): None "
        r"(for not nullable|is not of type)",
        "openapi-v2.yaml's own deal search example answers organization: null for a deal without one."),
    Allowance(
        "POST", r"/api/v2/(persons|organizations)", r"'title' is a required property",
        "openapi-v2.yaml lists required: [title] for person and organization bodies, copied from deals "
        "(shared/contracts/pipedrive/README.md); neither object has a title: name is what they require."),
    Allowance(
        "*", r"/api/v2/persons(/\d+)?", r"at (emails|phones)/\d+/label: .* is not of type 'boolean'",
        "openapi-v2.yaml types emails[].label and phones[].label as boolean in person requests, but its own "
        "person responses type label as a string and its examples send label: work / home; v1 documents "
        "label: \"main\"."),
)


@functools.cache
def pipedrive_v2() -> OpenApiContract:
    return OpenApiContract("pipedrive v2", _load("pipedrive/openapi-v2.yaml"), "https://api.pipedrive.com",
                           PIPEDRIVE_V2_ALLOWANCES)


@functools.cache
def pipedrive_v1() -> OpenApiContract:
    return OpenApiContract("pipedrive v1", _load("pipedrive/openapi-v1.yaml"), "https://api.pipedrive.com",
                           (V1_FIELD_TIMES,))


class PipedriveContract:
    """v2 for records and search, v1 for the field definitions; and where the API token travels.

    openapi-core cannot check the documents' security (each operation also accepts OAuth 2, a scheme
    it does not verify), so the token is checked here, against Pipedrive's authentication page: "The
    API token must be provided in the x-api-token header for all requests"
    (pipedrive.readme.io/docs/core-api-concepts-authentication). The v1 document still declares the
    ``api_token`` query parameter; a token in a URL ends up in proxies' logs, so it is a finding.
    """

    name = "pipedrive"

    def violations(self, exchange: Exchange) -> list[str]:
        contract = pipedrive_v1() if exchange.path.startswith("/v1/") else pipedrive_v2()
        found = contract.violations(exchange)
        if not exchange.headers.get("x-api-token"):
            found.append(f"{self.name}: {exchange}: no x-api-token header")
        if any(name == "api_token" for name, _ in exchange.query):
            found.append(f"{self.name}: {exchange}: the API token is in the URL (api_token=)")
        return found


@functools.cache
def klaviyo() -> OpenApiContract:
    """profiles.json, lists.json and events.json are self-contained; one OpenAPI of their union."""
    merged: dict[str, Any] | None = None
    for part in ("profiles", "lists", "events"):
        document = _load(f"klaviyo/{part}.json")
        if merged is None:
            merged = document
            continue
        merged["paths"].update(document["paths"])
        for kind, items in document.get("components", {}).items():
            merged["components"].setdefault(kind, {}).update(items)
    assert merged is not None
    return OpenApiContract("klaviyo", merged, "https://a.klaviyo.com")


@functools.cache
def intercom() -> OpenApiContract:
    return OpenApiContract("intercom", _load("intercom/api.intercom.io.2.16.contacts-subset.yaml"),
                           "https://api.intercom.io")


@functools.cache
def slack_webhook() -> SwaggerBodyContract:
    return SwaggerBodyContract(
        "slack", _load("slack/slack_web_openapi_v2.chat-subset.json"), "/chat.postMessage", r"/services/.+",
        # In JSON bodies blocks and attachments are JSON arrays (the spec's formData models form posts,
        # where they are JSON-encoded strings): api.slack.com/messaging/webhooks sends "blocks": [...].
        overrides={"blocks": {"$ref": "#/definitions/blocks"},
                   "attachments": {"type": "array", "items": {"type": "object"}}},
        # An incoming webhook posts to the channel it was created for: no channel argument
        # (api.slack.com/messaging/webhooks).
        optional=("channel",),
        evidence="incoming webhooks take chat.postMessage's message arguments in a JSON body")


SHEETS_ALLOWANCES = (
    Allowance("POST", r"/token", r"no method of the document serves",
              "the OAuth 2.0 token endpoint (JWT bearer grant, RFC 7523) of the service account is not part of "
              "the Sheets API; the emulator serves it beside the API."),
)


@functools.cache
def google_sheets() -> DiscoveryContract:
    return DiscoveryContract("google_sheets", _load("google-sheets/sheets.v4.json"), SHEETS_ALLOWANCES)
