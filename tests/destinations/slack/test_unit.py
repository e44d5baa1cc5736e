"""slack: templates and escaping, modes, and how Slack's answers become results (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.slack.destination import SlackDestination
from dbt_activate.destinations.slack.message import MAX_TEXT, Templates
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError

URL = "https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXXtoken1234"
TARGET = SyncTarget("accounts_converted", "conversions", Mode.CREATE,
                    (FieldSpec("name", "name"), FieldSpec("arr", "arr")), ("name",))

Handler = Callable[[httpx.Request], httpx.Response]


def destination(handler: Handler, **config: Any) -> SlackDestination:
    return SlackDestination("sales", {"type": "slack", "webhook_url": URL, **config},
                            transport=httpx.MockTransport(handler))


def posted(sent: list[dict[str, Any]], status: int = 200, body: str = "ok") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(status, text=body)
    return handler


def write(dest: SlackDestination, *records: Record, operation: Operation = Operation.CREATE) -> BatchResult:
    async def run() -> BatchResult:
        try:
            return await dest.write(TARGET, Batch(operation, list(records)))
        finally:
            await dest.close()
    return asyncio.run(run())


ACME = Record("acme", {"name": "Acme <Corp> & Co", "arr": Decimal("12000.50")})
BETA = Record("beta", {"name": "Beta", "arr": None})


def test_a_message_per_row_with_typed_values_and_escaped_output() -> None:
    sent: list[dict[str, Any]] = []
    dest = destination(posted(sent), text="{% if row.arr and row.arr > 10000 %}:moneybag: {% endif %}"
                                          "*{{ row.name }}* converted ({{ row.arr }}) <https://crm/{{ key }}|open>")
    assert write(dest, ACME, BETA) == BatchResult()
    assert [m["text"] for m in sent] == [
        ":moneybag: *Acme &lt;Corp&gt; &amp; Co* converted (12000.50) <https://crm/acme|open>",
        "*Beta* converted () <https://crm/beta|open>"]


def test_a_digest_is_one_message_per_batch() -> None:
    sent: list[dict[str, Any]] = []
    dest = destination(posted(sent), message="digest")
    assert write(dest, ACME, BETA) == BatchResult()
    [message] = sent
    assert message["text"] == ("*accounts_converted*: 2 new conversions record(s)\n"
                               "• Acme &lt;Corp&gt; &amp; Co · 12000.50\n• Beta ·")
    assert dest.estimate_requests(Operation.CREATE, 120) == 3
    assert destination(posted([])).estimate_requests(Operation.CREATE, 120) == 120


def test_blocks_are_rendered_and_sent() -> None:
    sent: list[dict[str, Any]] = []
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ row.name }}*"}}]
    write(destination(posted(sent), blocks=blocks), BETA)
    assert sent[0]["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "*Beta*"}}]


def test_a_row_whose_template_renders_nothing_or_fails_is_rejected_and_not_sent() -> None:
    sent: list[dict[str, Any]] = []
    dest = destination(posted(sent), text="{% if row.arr %}{{ row.name }} {{ row.arr.missing_attr }}{% endif %}")
    result = write(dest, ACME, BETA)
    assert result.rejected["beta"] == "no_text: the template rendered an empty message"
    assert "undefined value" in result.rejected["acme"]
    assert sent == []


def test_slacks_400_error_is_the_rejection_reason() -> None:
    result = write(destination(posted([], 400, "invalid_blocks")), ACME)
    assert result.rejected == {"acme": "Slack refused the message: invalid_blocks"}


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (410, "channel_is_archived"),
                                              (403, "action_prohibited")])
def test_a_broken_webhook_fails_the_sync_without_printing_the_url(status: int, body: str) -> None:
    with pytest.raises(DestinationError) as caught:
        write(destination(posted([], status, body)), ACME)
    assert not caught.value.retryable and body in str(caught.value)
    assert "XXXXsecretXXXXtoken1234" not in str(caught.value)


def test_429_is_retryable_after_retry_after_and_the_retry_does_not_repeat_posted_messages() -> None:
    sent: list[str] = []
    answers = [httpx.Response(200, text="ok"), httpx.Response(429, text="rate_limited", headers={"Retry-After": "3"}),
               httpx.Response(200, text="ok")]

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["text"])
        return answers.pop(0)

    dest = destination(handler, text="{{ row.name }}")
    batch = Batch(Operation.CREATE, [ACME, BETA])

    async def run() -> BatchResult:
        with pytest.raises(RetryableDestinationError) as caught:
            await dest.write(TARGET, batch)
        assert caught.value.retry_after == 3
        result = await dest.write(TARGET, batch)  # what deliver() does after the pause
        await dest.close()
        return result

    assert asyncio.run(run()) == BatchResult()
    assert sent == ["Acme &lt;Corp&gt; &amp; Co", "Beta", "Beta"]  # Acme was posted once


def test_modes_other_than_create_and_append_are_refused_naming_the_sync() -> None:
    dest = destination(posted([]))
    for mode in (Mode.CREATE, Mode.APPEND):
        dest.check_target(SyncTarget("s", "o", mode, TARGET.fields, ("name",)))
    with pytest.raises(ConfigError, match=r"sync accounts_converted: mode 'upsert' is not supported by "
                                          r"destination 'sales' \(slack\)"):
        dest.check_target(SyncTarget("accounts_converted", "o", Mode.UPSERT, TARGET.fields, ("name",)))
    assert write(dest, ACME, operation=Operation.DELETE).skipped == {"acme": "slack does not delete messages"}


@pytest.mark.parametrize(("config", "fragment"), [
    ({"message": "thread"}, "sales.message: message must be one of row, digest"),
    ({"text": "{% if %}"}, "sales.text: template syntax error"),
    ({"blocks": [{"type": "section", "text": "{{ row.x"}]}, r"sales.blocks\[0\].text: template syntax error"),
    ({"blocks": "section"}, "sales.blocks: blocks must be a list"),
    ({"webhook_url": "hooks.slack.com/x"}, "sales.webhook_url"),
    ({"batch_size": 101}, "sales.batch_size"),
])
def test_config_errors_name_the_key(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        destination(posted([]), **config)


def test_long_text_is_cut_with_a_note_and_dates_print_as_iso() -> None:
    templates = Templates("t", "{{ row.when }} {{ row.long }}", None, digest=False)
    text = templates.render({"row": {"when": dt.date(2024, 5, 1), "long": "x" * 50_000}})["text"]
    assert len(text) == MAX_TEXT and text.startswith("2024-05-01 x") and text.endswith("40,000 characters)")


def test_describe_request_shows_the_messages_and_hides_the_url() -> None:
    described = destination(posted([]), text="{{ row.name }}").describe_request(TARGET, Batch(Operation.CREATE, [BETA]))
    assert described == {"method": "POST", "url": "***", "messages": [{"text": "Beta"}]}
