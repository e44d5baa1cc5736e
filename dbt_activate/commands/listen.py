"""`dbt-activate listen`: receive dbt Cloud "job run completed" webhooks and sync that run's artifacts.

dbt Cloud (https://docs.getdbt.com/docs/deploy/webhooks) POSTs a JSON event to the endpoint and
signs it: the ``Authorization`` header is the hex HMAC-SHA256 of the raw body keyed with the
webhook's secret. It retries a delivery that is not answered with 2xx within 10 seconds (up to five
times), so this receiver

- answers 401, and runs nothing, when the signature is missing or wrong (compared in constant time);
- answers 200 at once and runs the sync on a worker thread, one run at a time;
- remembers event ids (``eventId``) and ignores a delivery it has already seen;
- ignores (200, with the reason) other event types, runs that did not succeed, and jobs that are not
  in the allow list, so a misconfigured webhook never syncs another job's artifacts.

The run itself is ``start_run(run_id)``: the CLI passes one that runs `dbt-activate run
--dbt-cloud-run-id <id>`, which fetches the run's build-step artifacts (dbt_cloud.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dbt_activate.errors import ConfigError

ENV_SECRET = "DBT_CLOUD_WEBHOOK_SECRET"
EVENT_COMPLETED = "job.run.completed"
SUCCESS_CODE = 10
MAX_BODY = 1 << 20  # webhook events are a few hundred bytes
REMEMBERED_EVENTS = 10_000
HANDLER_TIMEOUT = 10.0  # seconds a connection may stay silent; dbt Cloud itself gives up after 10 s


def signature(secret: str, body: bytes) -> str:
    """What dbt Cloud puts in ``Authorization``: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    status: int
    outcome: str  # queued | duplicate | ignored | unauthorized | invalid
    detail: str = ""
    run_id: int | None = None

    def body(self) -> bytes:
        document: dict[str, Any] = {"status": self.outcome, "detail": self.detail}
        if self.run_id is not None:
            document["run_id"] = self.run_id
        return json.dumps(document).encode()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class WebhookListener:
    """The decisions (``handle``) and a small HTTP server around them; see the module docstring."""

    def __init__(self, secret: str, job_ids: Collection[int], start_run: Callable[[int], None], *,
                 host: str = "127.0.0.1", port: int = 0, log: Callable[[str], None] = lambda _: None) -> None:
        if not secret:
            raise ConfigError(f"listen needs the webhook secret (--secret or {ENV_SECRET}): unsigned webhooks "
                              "would let anyone trigger syncs")
        if not job_ids:
            raise ConfigError("listen needs at least one --job-id: the dbt Cloud jobs whose runs may be synced")
        self._secret = secret
        self.job_ids = frozenset(job_ids)
        self._start_run = start_run
        self._log = log
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[int | None] = queue.Queue()
        self.answers: list[Answer] = []  # every decision, in order (for tests and logs)
        self.failures: list[str] = []  # runs that raised
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- decisions -----------------------------------------------------------------------------

    def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        answer = self._decide(headers, body)
        with self._lock:
            self.answers.append(answer)
        self._log(f"webhook {answer.outcome}: {answer.detail}")
        if answer.outcome == "queued" and answer.run_id is not None:
            self._queue.put(answer.run_id)
        return answer

    def _decide(self, headers: Mapping[str, str], body: bytes) -> Answer:
        provided = next((v for k, v in headers.items() if k.lower() == "authorization"), "").strip()
        expected = signature(self._secret, body)
        if not provided or not hmac.compare_digest(expected.encode(), provided.lower().encode("utf-8", "replace")):
            return Answer(401, "unauthorized", "missing or invalid signature")
        try:
            event = json.loads(body)
        except ValueError:
            return Answer(400, "invalid", "body is not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return Answer(400, "invalid", "body is not a dbt Cloud webhook event")
        event_id = str(event.get("eventId") or "")
        data = event["data"]
        run_id, job_id = _int(data.get("runId")), _int(data.get("jobId"))
        where = f"event {event_id or '?'} (job {data.get('jobId')}, run {data.get('runId')})"
        if not self._first_delivery(event_id):
            return Answer(200, "duplicate", f"{where} was already received")
        if event.get("eventType") != EVENT_COMPLETED:
            return Answer(200, "ignored", f"{where}: event type {event.get('eventType')!r} is not {EVENT_COMPLETED}")
        if _int(data.get("runStatusCode")) != SUCCESS_CODE and data.get("runStatus") != "Success":
            return Answer(200, "ignored", f"{where}: the run did not succeed ({data.get('runStatus')})")
        if job_id not in self.job_ids:
            return Answer(200, "ignored", f"{where}: job {data.get('jobId')} is not in --job-id")
        if run_id is None:
            return Answer(400, "invalid", f"{where}: no runId")
        return Answer(200, "queued", f"{where}: syncing run {run_id}", run_id)

    def _first_delivery(self, event_id: str) -> bool:
        if not event_id:
            return True  # nothing to dedupe on; dbt Cloud always sends one
        with self._lock:
            if event_id in self._seen:
                return False
            self._seen[event_id] = None
            while len(self._seen) > REMEMBERED_EVENTS:
                self._seen.popitem(last=False)
            return True

    # -- worker --------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            try:
                if run_id is None:
                    return
                self._start_run(run_id)
                self._log(f"finished dbt Cloud run {run_id}")
            except Exception as exc:  # one failed sync must not stop the listener
                with self._lock:
                    self.failures.append(f"run {run_id}: {type(exc).__name__}: {exc}")
                self._log(f"sync of dbt Cloud run {run_id} failed: {exc}")
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every queued run has been processed."""
        self._queue.join()

    # -- HTTP ----------------------------------------------------------------------------------

    def start(self) -> WebhookListener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A client that stops sending (or never sends the body it announced) must not hold a
            # handler thread forever: socket reads give up after this many seconds.
            timeout = HANDLER_TIMEOUT

            def do_POST(self) -> None:
                header = self.headers.get("Content-Length")
                if header is None:
                    self._send(Answer(411, "invalid", "Content-Length is required"), close=True)
                    return
                length = _int(header.strip()) if header.strip().isdigit() else None
                if length is None:  # non-numeric or negative (rfile.read(-1) would wait for EOF)
                    self._send(Answer(400, "invalid", "Content-Length is not a number of bytes"), close=True)
                    return
                if length > MAX_BODY:
                    self._send(Answer(413, "invalid", "body too large"), close=True)
                    return
                body = self.rfile.read(length)
                self._send(listener.handle(dict(self.headers.items()), body))

            def do_GET(self) -> None:
                self._send(Answer(200, "ok", "POST dbt Cloud job.run.completed webhooks here"))

            def _send(self, answer: Answer, *, close: bool = False) -> None:
                payload = answer.body()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if close:  # the body was not read: the connection cannot carry another request
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # decisions are logged by handle(), never headers

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, name="listen-http", daemon=True),
                         threading.Thread(target=self._work, name="listen-worker", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def __enter__(self) -> WebhookListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("listener is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    def serve_forever(self, ready: Callable[[WebhookListener], None] | None = None) -> None:
        """Run until interrupted (the CLI); ``ready`` is called once it listens."""
        self.start()
        try:
            if ready is not None:
                ready(self)
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
