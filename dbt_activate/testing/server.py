"""The common base of the vendor emulators: real HTTP on 127.0.0.1, standard library only.

An emulator is a ``ThreadingHTTPServer`` (one daemon thread per connection, HTTP/1.1 keep-alive)
plus a routing table of ``(method, path regex) -> handler``. Around every handler the base applies,
in this order: counters, ``latency``, injected faults (``faults.py``), authentication, the rate
limiters (``limits.py``); then the handler runs and the vendor's rate-limit headers are added.
Subclasses supply the routes and the vendor's shapes: ``authenticate``, ``error_response``,
``throttled_response``, ``limit_headers``. Every knob can be set at construction and changed while
the server runs::

    with HubSpotEmulator(token="t", rate_limit=(100, 10)) as emu:
        client = httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer t"})
        emu.inject("status_5xx", count=2)
        emu.latency = 0.05

An emulator in another process is inspected and steered through ``/_emulator/…`` (``control.py``).
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs

from dbt_activate.testing.control import PREFIX as CONTROL_PREFIX
from dbt_activate.testing.control import control
from dbt_activate.testing.counters import Counters, Counts
from dbt_activate.testing.faults import Fault, FaultPlan
from dbt_activate.testing.limits import Decision, Limits, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.transport import HTTPServerThread

Handler = Callable[[Request], Response]
E = TypeVar("E", bound="Emulator")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    writes: bool  # carries records: eligible for ``partial`` faults (its handler counts the records)
    group: str  # which rolling window limits it ("default"; "search" has its own at some vendors)
    cost: int  # units taken from the daily quota (Pipedrive's token cost; 1 elsewhere)
    auth: bool


class Emulator:
    """Base class; see the module docstring. Start with ``with``, or ``start()``/``stop()``."""

    vendor: ClassVar[str] = "generic"
    default_rate_limit: ClassVar[RateLimit | None] = None

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rate_limit: RateLimitSpec = None,
        daily_limit: int | None = None,
        faults: Iterable[Fault] = (),
        fault_probability: float = 0.0,
        fault_kinds: Sequence[str | Fault] = ("status_5xx",),
        seed: int | None = None,
    ) -> None:
        self.token = token
        self.host, self._port = host, port
        self.latency = latency
        self.lock = threading.RLock()  # guards the subclass's records
        self.errors: list[str] = []  # tracebacks of handler bugs (answered as 500); tests assert it empty
        self._routes: list[Route] = []
        self._limits = Limits()
        self._faults = FaultPlan()
        self._counters = Counters()
        self._http: HTTPServerThread | None = None
        self.rate_limit = rate_limit
        self.daily_limit = daily_limit
        for fault in faults:
            self._faults.add(fault)
        self._faults.set_probability(fault_probability, fault_kinds, seed)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self: E) -> E:
        if self._http is None:
            self._http = HTTPServerThread(self.host, self._port, self.dispatch, name=f"{self.vendor}-emulator")
        return self

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections and wake any hanging fault."""
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self: E) -> E:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError(f"{self.vendor} emulator is not running; call start() or use `with`")
        return self._http.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the vendor's API origin, without any version path."""
        return f"http://{self.host}:{self.port}"

    # -- knobs -------------------------------------------------------------------------------

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._limits.window("default")

    @rate_limit.setter
    def rate_limit(self, spec: RateLimitSpec) -> None:
        self._limits.set_window("default", RateLimit.parse(spec, self.default_rate_limit))

    def set_group_limit(self, group: str, spec: RateLimitSpec) -> None:
        """Rolling window of another route group, e.g. ``"search"`` (HubSpot, Pipedrive)."""
        self._limits.set_window(group, RateLimit.parse(spec))

    @property
    def daily_limit(self) -> int | None:
        return self._limits.daily_limit

    @daily_limit.setter
    def daily_limit(self, limit: int | None) -> None:
        self._limits.set_daily(limit)

    @property
    def daily_used(self) -> int:
        return self._limits.daily_used

    def reset_daily(self) -> None:
        self._limits.reset_daily()

    def inject(self, fault: Fault | str, count: int = 1, **options: Any) -> None:
        """Apply ``fault`` to the next ``count`` matching requests, e.g. ``inject("drop")``."""
        self._faults.add(fault if isinstance(fault, Fault) else Fault(fault, **options), count)

    def set_fault_probability(
        self, probability: float, kinds: Sequence[str | Fault] = ("status_5xx",), seed: int | None = None
    ) -> None:
        """Fail each request with ``probability``, with one of ``kinds`` picked at random."""
        self._faults.set_probability(probability, kinds, seed)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        return self._faults.pending

    @property
    def counters(self) -> Counts:
        return self._counters.snapshot()

    def reset_counters(self) -> None:
        self._counters.reset()

    # -- routing -----------------------------------------------------------------------------

    def route(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        writes: bool = False,
        group: str = "default",
        cost: int = 1,
        auth: bool = True,
    ) -> None:
        """Register ``handler`` for ``method`` and a path regex (full match, named groups -> params)."""
        self._routes.append(Route(method.upper(), re.compile(pattern), handler, writes, group, cost, auth))

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response | None:
        """Serve one request; ``None`` means: close the connection without answering."""
        path, _, query = target.partition("?")
        if path.startswith(CONTROL_PREFIX):
            return control(self, method, path, body)
        self._counters.request(path)
        if self.latency > 0 and self._sleep(self.latency):
            return None
        route, params = self._match(method, path)
        fault = self._faults.next(path, route is not None and route.writes)
        if fault is not None:
            self._counters.fault()
            if fault.kind == "drop":
                return None
            if fault.kind == "timeout" and self._sleep(fault.seconds):
                return None
            if fault.kind == "status_5xx":
                return self._sent(self.server_error(fault.status))
            if fault.kind == "throttle":
                return self._sent(self.throttled_response(self._fake_throttle()), throttled=True)
        if route is None:
            return self._sent(self.not_found(method, path))
        partial = fault if fault is not None and fault.kind == "partial" else None
        request = Request(method, path, parse_qs(query, keep_blank_values=True), headers, body, params, partial)
        if route.auth:
            denied = self.authenticate(request)
            if denied is not None:
                return self._sent(denied)
        decision = self._limits.check(route.group, route.cost)
        if not decision.allowed:
            return self._sent(self.throttled_response(decision), throttled=True)
        try:
            response = route.handler(request)
        except ApiError as err:
            response = self.error_response(err)
        except Exception:
            self.errors.append(traceback.format_exc())
            response = self.server_error(500)
        response.headers.update(self.limit_headers(decision))
        return self._sent(response)

    def count_records(self, count: int) -> None:
        """Handlers call this with the number of records a write request carried."""
        self._counters.records(count)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method == method:
                found = route.pattern.fullmatch(path)
                if found:
                    return route, found.groupdict()
        return None, {}

    def _sent(self, response: Response, throttled: bool = False) -> Response:
        self._counters.response(response.status, throttled)
        return response

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; True if it stopped meanwhile."""
        http = self._http
        return http.stopping.wait(seconds) if http is not None else False

    def _fake_throttle(self) -> Decision:
        limit = self.rate_limit or self.default_rate_limit or RateLimit(1, 1.0)
        return Decision(
            False, "window", limit=limit.requests, remaining=0, reset=limit.per_seconds, interval=limit.per_seconds
        )

    # -- vendor shapes: subclasses override ----------------------------------------------------

    def bearer_token(self, request: Request) -> str | None:
        auth = request.header("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def authenticate(self, request: Request) -> Response | None:
        """``None`` when the request may proceed, else the vendor's 401."""
        if self.token is None or self.bearer_token(request) == self.token:
            return None
        return self.error_response(ApiError(401, "Authentication credentials not found or invalid", "UNAUTHORIZED"))

    def error_response(self, err: ApiError) -> Response:
        return Response.json({"message": err.message, "code": err.code, **err.extra}, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "The server failed to process the request", "INTERNAL_ERROR"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"No route for {method} {path}", "NOT_FOUND"))

    def throttled_response(self, decision: Decision) -> Response:
        return Response.json({"message": "Too many requests"}, 429, {"Retry-After": str(int(decision.reset) + 1)})

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        return {}
