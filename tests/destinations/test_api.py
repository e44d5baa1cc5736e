"""``ApiDestination``: the plumbing every HTTP API destination shares, on a minimal type of its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

from dbt_activate import (
    ApiDestination,
    Batch,
    BatchResult,
    ConfigError,
    ConfigKey,
    FieldSpec,
    Mode,
    Operation,
    Record,
    SyncTarget,
)
from dbt_activate.core.types import RateLimit
from dbt_activate.destinations.api import REASON_LIMIT, Endpoint, clip_reason, json_object, one_of


class Example(ApiDestination):
    kind = "example"
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("token", str, required=True, secret=True),
        ConfigKey("base_url", str, default="https://api.example.com"),
        ConfigKey("flavour", str, default="plain"),
        ConfigKey("poll_interval", (int, float), default=2.5),
        ConfigKey("nulls", str, default="keep"),
    )
    default_base_url = "https://api.example.com"
    max_batch_size = 50
    batch_limit = "Example's maximum"
    batch_size = 20
    endpoints: ClassVar[Mapping[Operation, Endpoint]] = {
        Operation.UPSERT: Endpoint("POST /v1/{object}/batch"),
        Operation.DELETE: Endpoint("DELETE /v1/{object}/{id}", per_batch=0, per_record=1),
    }

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.settings.text('token')}"}

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        response = await self.session().request("POST", f"/v1/{target.object}/batch")
        return BatchResult(rejected={"1": clip_reason(str(json_object(response).get("error")))})


TARGET = SyncTarget(sync_name="s", object="people", mode=Mode.UPSERT, fields=(FieldSpec("id", "id"),),
                    identity=("id",))


def example(transport: httpx.AsyncBaseTransport | None = None, **config: Any) -> Example:
    return Example("ex", {"type": "example", "token": "s3cret", **config}, transport=transport)


def test_settings_apply_the_declared_defaults_once() -> None:
    settings = example(flavour="", batch_size=10).settings
    assert settings.text("flavour") == "plain"  # empty counts as missing, as `config.get(k) or default` did
    assert settings.number("poll_interval") == 2.5
    assert (settings.base_url, settings.batch_size, settings.timeout) == ("https://api.example.com", 10, 30.0)
    with pytest.raises(KeyError, match="not a declared config key"):
        settings.text("flavor")


@pytest.mark.parametrize(("config", "location", "message"), [
    ({"base_url": "ftp://example.com"}, "ex.base_url", "must start with https://"),
    ({"batch_size": 51}, "ex.batch_size", "between 1 and 50 (Example's maximum), got 51"),
    ({"batch_size": 0}, "ex.batch_size", "between 1 and 50"),
    ({"rate_limit": {"requests": 0}}, "ex.rate_limit", "N >= 1"),
    ({"nulls": "wipe"}, "ex.nulls", "nulls must be one of"),
])
def test_bad_config_is_a_config_error_naming_the_key(config: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        example(**config)
    assert raised.value.location == location


def test_base_url_loses_its_trailing_slash() -> None:
    assert example(base_url="http://127.0.0.1:9/api/").base_url == "http://127.0.0.1:9/api"


def test_one_session_with_the_types_headers_until_close() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, text="<html>not json</html>" if len(seen) > 1 else '{"error": "' + "x" * 999 + '"}')

    destination = example(httpx.MockTransport(answer))
    target = TARGET
    batch = Batch(Operation.UPSERT, [Record("1", {"id": 1})])

    async def run() -> tuple[BatchResult, BatchResult, bool, bool]:
        await destination.open(target)
        first = destination.session()
        one = await destination.write(target, batch)
        two = await destination.write(target, batch)
        same = destination.session() is first
        await destination.close()
        return one, two, same, destination._sessions == {}

    one, two, same, closed = asyncio.run(run())
    assert same and closed
    assert [r.headers["Authorization"] for r in seen] == ["Bearer s3cret"] * 2
    assert len(one.rejected["1"]) == REASON_LIMIT and one.rejected["1"].endswith("…")
    assert two.rejected["1"] == "None"  # an HTML body is no JSON object: json_object gives {}


def test_plan_reads_the_per_operation_table() -> None:
    destination = example(batch_size=20)
    assert destination.estimate_requests(Operation.UPSERT, 45) == 3
    assert destination.estimate_requests(Operation.DELETE, 45) == 45
    assert destination.estimate_requests(Operation.UPDATE, 45) == 3  # not in the table: one per batch
    target = TARGET
    described = destination.describe_request(target, Batch(Operation.UPSERT, [Record("1", {"id": 1})]))
    assert described["request"] == "POST /v1/people/batch"
    assert described["records"] == [{"id": 1}]


class Tuned(Example):
    """Documents the standard keys it tunes in its own words; their type and default are the class's."""

    kind = "tuned"
    batch_size = 30
    max_concurrency = 3
    rate_limit = RateLimit(10, 4.0)
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": "Rows per request.", "rate_limit": ", the vendor's burst limit.", "max_concurrency": "In flight.",
    }

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.flavour = one_of(name, "flavour", self.settings.text("flavour"), ("plain", "salted"))


def test_standard_keys_take_their_defaults_from_the_class_and_their_words_from_key_help() -> None:
    keys = {k.name: k for k in Tuned.config_keys}
    assert (keys["batch_size"].type, keys["batch_size"].default, keys["batch_size"].help) == (
        int, 30, "Rows per request.")
    assert (keys["max_concurrency"].default, keys["max_concurrency"].help) == (3, "In flight.")
    assert keys["rate_limit"].help == "{requests: N, per_seconds: S}; default 10 per 4 s, the vendor's burst limit."
    names = [k.name for k in Tuned.config_keys]
    assert names.count("base_url") == names.count("timeout") == 1  # declared once, by Example
    with pytest.raises(TypeError, match="not standard: flavour"):
        type("Bad", (Example,), {"kind": "bad", "key_help": {"flavour": "no"}})


def test_configure_reads_the_types_own_keys_after_the_shared_ones() -> None:
    assert Tuned("t", {"type": "tuned", "token": "x", "flavour": "salted"}).flavour == "salted"
    with pytest.raises(ConfigError, match="flavour must be one of plain, salted") as info:
        Tuned("t", {"type": "tuned", "token": "x", "flavour": "spicy"})
    assert info.value.location == "t.flavour"
