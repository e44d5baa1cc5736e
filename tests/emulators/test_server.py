"""The emulator base (dbt_activate/testing/server.py): HTTP/1.1, knobs, faults, counters, CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dbt_activate.testing import Emulator, Fault, RateLimit, Request, Response


class EchoEmulator(Emulator):
    """The smallest emulator: what another module (webhook.py) builds on the base."""

    vendor = "echo"

    def __init__(self, **knobs: object) -> None:
        super().__init__(**knobs)  # type: ignore[arg-type]
        self.route("POST", r"/items", self._items, writes=True)
        self.route("GET", r"/items/(?P<id>\d+)", lambda req: Response.json({"id": int(req.params["id"])}))

    def _items(self, req: Request) -> Response:
        items = req.json()
        self.count_records(len(items))
        return Response.json([{"index": i, "ok": not req.fails(i, len(items))} for i in range(len(items))])


@pytest.fixture
def emu() -> Iterator[EchoEmulator]:
    with EchoEmulator(token="secret") as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def client(emu: EchoEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer secret"}, timeout=5) as c:
        yield c


def _raw_exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send one request and read exactly one response (by Content-Length) off a kept-alive socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def test_keep_alive_serves_many_requests_on_one_connection(emu: EchoEmulator) -> None:
    with socket.create_connection(("127.0.0.1", emu.port)) as sock:
        for number in (1, 2, 3):
            request = f"GET /items/{number} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\n\r\n".encode()
            head, body = _raw_exchange(sock, request)
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body) == {"id": number}
    assert emu.counters.requests == 3


def test_chunked_request_bodies_are_read(emu: EchoEmulator, client: httpx.Client) -> None:
    response = client.post("/items", content=iter([b"[1,", b"2,3]"]), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert emu.counters.records == 3


def test_missing_or_wrong_token_is_401_and_reaches_no_handler(emu: EchoEmulator) -> None:
    assert httpx.post(emu.base_url + "/items", json=[1]).status_code == 401
    assert httpx.post(emu.base_url + "/items", json=[1], headers={"Authorization": "Bearer nope"}).status_code == 401
    assert emu.counters.records == 0
    assert emu.counters.by_status == {401: 2}


def test_counters_count_requests_paths_statuses_and_records(emu: EchoEmulator, client: httpx.Client) -> None:
    client.post("/items", json=[1, 2])
    client.get("/items/7")
    client.get("/nowhere")
    counts = emu.counters
    assert (counts.requests, counts.records, counts.throttled) == (3, 2, 0)
    assert counts.by_path == {"/items": 1, "/items/7": 1, "/nowhere": 1}
    assert counts.by_status == {200: 2, 404: 1}
    emu.reset_counters()
    assert emu.counters.requests == 0


def test_latency_knob_delays_every_request_and_changes_at_runtime(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.latency = 0.2
    started = time.perf_counter()
    client.get("/items/1")
    assert time.perf_counter() - started >= 0.2
    emu.latency = 0.0
    started = time.perf_counter()
    client.get("/items/1")
    assert time.perf_counter() - started < 0.15


def test_rate_limit_window_refuses_then_recovers(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.rate_limit = (3, 0.5)
    statuses = [client.get("/items/1").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert emu.counters.throttled == 2
    time.sleep(0.55)
    assert client.get("/items/1").status_code == 200
    emu.rate_limit = None
    assert all(client.get("/items/1").status_code == 200 for _ in range(10))


def test_daily_limit_refuses_once_used_up_until_reset(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.daily_limit = 2
    assert [client.get("/items/1").status_code for _ in range(3)] == [200, 200, 429]
    assert emu.daily_used == 2
    emu.reset_daily()
    assert client.get("/items/1").status_code == 200


def test_schema_documents_build_each_vendors_schema() -> None:
    from dbt_activate.testing.registry import schema_kwargs

    hubspot = schema_kwargs("hubspot", {"properties": {"contacts": [{"name": "tier", "type": "enumeration",
                                                                      "options": ["a", "b"]}]}})
    assert hubspot["properties"]["contacts"][0].options == ("a", "b")
    salesforce = schema_kwargs("salesforce", {"custom_objects": {"Car__c": [{"name": "Vin__c", "external_id": True}]}})
    assert salesforce["custom_objects"]["Car__c"][0].external_id is True
    pipedrive = schema_kwargs("pipedrive", {"custom_fields": {"deals": [{"name": "Plan", "field_type": "enum",
                                                                         "options": ["Pro"]}]}})
    assert pipedrive["custom_fields"]["deals"][0].options == ("Pro",)


def test_rate_limit_spec_forms() -> None:
    assert RateLimit.parse("100/10") == RateLimit(100, 10.0)
    assert RateLimit.parse((5, 1)) == RateLimit(5, 1.0)
    assert RateLimit.parse(True, RateLimit(1, 2)) == RateLimit(1, 2)
    assert RateLimit.parse(None) is None
    with pytest.raises(ValueError):
        RateLimit.parse(True)


def test_status_5xx_fault_hits_the_next_n_matching_requests(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.inject("status_5xx", count=2, status=502, path=r"^/items$")
    assert client.get("/items/1").status_code == 200  # path filter: not this one
    assert [client.post("/items", json=[1]).status_code for _ in range(3)] == [502, 502, 200]
    assert emu.pending_faults == 0
    assert emu.counters.faults == 2
    assert emu.counters.records == 1  # the failed requests never reached the handler


def test_drop_fault_closes_the_connection_without_answer(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/items", json=[1])
    assert emu.counters.records == 0
    assert client.post("/items", json=[1]).status_code == 200  # the client reconnects


def test_timeout_fault_outlasts_the_client_timeout(emu: EchoEmulator) -> None:
    emu.inject(Fault("timeout", seconds=1.0))
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer secret"}, timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/items/1")
        assert c.get("/items/2").status_code == 200


def test_partial_fault_reaches_the_handler_of_write_routes_only(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.inject(Fault("partial", fail_indexes=(0, 2)))
    assert client.get("/items/1").status_code == 200  # reads do not consume a partial fault
    results = client.post("/items", json=[1, 2, 3]).json()
    assert [r["ok"] for r in results] == [False, True, False]
    assert [r["ok"] for r in client.post("/items", json=[1, 2]).json()] == [True, True]


def test_throttle_fault_answers_one_429(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.inject("throttle")
    assert [client.get("/items/1").status_code for _ in range(2)] == [429, 200]
    assert emu.counters.throttled == 1


def test_fault_probability_is_seeded_and_can_be_cleared(emu: EchoEmulator, client: httpx.Client) -> None:
    emu.set_fault_probability(0.5, kinds=("status_5xx",), seed=7)
    first = [client.get("/items/1").status_code for _ in range(20)]
    emu.set_fault_probability(0.5, kinds=("status_5xx",), seed=7)
    assert [client.get("/items/1").status_code for _ in range(20)] == first
    assert 0 < first.count(503) < 20
    emu.clear_faults()
    assert all(client.get("/items/1").status_code == 200 for _ in range(10))


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


def test_stop_closes_kept_alive_connections_and_frees_hanging_requests() -> None:
    emulator = EchoEmulator(token=None).start()
    emulator.inject(Fault("timeout", seconds=30))
    with httpx.Client(base_url=emulator.base_url, timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/items/1")
        started = time.perf_counter()
        emulator.stop()
        assert time.perf_counter() - started < 2
        with pytest.raises(httpx.TransportError):
            c.get("/items/1")


def test_command_line_serves_an_emulator_until_terminated(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"properties": {"contacts": [{"name": "driver_id", "unique": True}]}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "dbt_activate.testing", "hubspot", "--port", "0", "--token", "cli",
         "--rate-limit", "2/10", "--schema", str(schema)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        headers = {"Authorization": "Bearer cli"}
        statuses = [httpx.get(base_url + "/crm/v3/objects/contacts", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # the control endpoints stand in for the Python accessors across processes
        counters = httpx.get(base_url + "/_emulator/counters").json()
        assert (counters["requests"], counters["throttled"]) == (3, 1)
        knobs = httpx.post(base_url + "/_emulator/knobs", json={"rate_limit": None}).json()
        assert knobs["rate_limit"] is None
        httpx.post(base_url + "/_emulator/faults", json={"kind": "status_5xx", "status": 502})
        upsert = {"inputs": [{"idProperty": "driver_id", "id": "D-1", "properties": {"email": "cli@x.io"}}]}
        url = base_url + "/crm/v3/objects/contacts/batch/upsert"
        assert [httpx.post(url, json=upsert, headers=headers).status_code for _ in range(2)] == [502, 200]
        records = httpx.get(base_url + "/_emulator/records/contacts").json()
        assert records[0]["properties"] == {"email": "cli@x.io", "driver_id": "D-1"}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


MALFORMED: dict[str, list[tuple[str, str]]] = {
    "hubspot": [("POST", "/crm/v3/objects/contacts/batch/upsert"), ("POST", "/crm/v3/objects/contacts/batch/read"),
                ("POST", "/crm/v3/objects/contacts/batch/create"), ("POST", "/crm/v3/objects/contacts/search"),
                ("GET", "/crm/v3/objects/contacts?limit=x&after=y")],
    "salesforce": [("PATCH", "/services/data/v62.0/composite/sobjects/Contact/Id"),
                   ("POST", "/services/data/v62.0/composite/sobjects"),
                   ("DELETE", "/services/data/v62.0/composite/sobjects?ids="),
                   ("POST", "/services/data/v62.0/jobs/ingest"),
                   ("GET", "/services/data/v62.0/query?q=SELECT+Nope+FROM+Contact"),
                   ("GET", "/services/data/v62.0/query?q=DELETE+everything")],
    "pipedrive": [("POST", "/api/v2/persons"), ("PATCH", "/api/v2/persons/1"), ("POST", "/v1/personFields"),
                  ("GET", "/api/v2/persons?cursor=%%%&limit=x"), ("GET", "/api/v2/itemSearch/field?match=regex"),
                  ("GET", "/api/v2/persons/search?term=ab&cursor=x")],
}
BODIES = [b"not json", b"[]", b"null", b'{"inputs": "x", "records": 3}', b'{"inputs": [1], "records": [1]}',
          b'{"inputs": [{"id": {}}], "records": [{"attributes": 1}], "name": [], "object": 7}']


@pytest.mark.parametrize("vendor", sorted(MALFORMED))
def test_malformed_requests_never_crash_an_emulator(vendor: str) -> None:
    from dbt_activate.testing import EMULATORS

    with EMULATORS[vendor](token=None) as emulator, httpx.Client(base_url=emulator.base_url) as client:
        for method, path in MALFORMED[vendor]:
            for body in BODIES:
                response = client.request(method, path, content=body)
                assert response.status_code < 500, (method, path, body, response.text)
        assert emulator.errors == []


def test_bodies_json_accepts_are_parsed_as_json_parses_them_and_answers_keep_its_shape(
        emu: EchoEmulator, client: httpx.Client) -> None:
    from dbt_activate.testing.messages import dump_json, parse_json

    # orjson does the common case; what it refuses and json accepts still parses (NaN, a 20-digit id).
    for body in (b'{"a": [1, 2.5, "\\u00e9", null, true]}', b'{"n": NaN, "big": 123456789012345678901234}'):
        assert repr(parse_json(body)) == repr(json.loads(body))
    with pytest.raises(ValueError):
        parse_json(b"{not json")
    for payload in ({"a": "é\u2028", "b": [1, 2.5, None, True]}, {1: "int key"}, {"big": 2**70}):
        assert json.loads(dump_json(payload)) == json.loads(json.dumps(payload))
    # Over real HTTP: a malformed body is still the vendor's 400, a NaN body still reaches the handler.
    assert client.post("/items", content=b"[1, NaN, 3]").json() == [{"index": i, "ok": True} for i in range(3)]
    assert client.post("/items", content=b"[1,").status_code == 400
