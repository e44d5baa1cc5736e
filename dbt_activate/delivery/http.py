"""``HttpSession``: the one HTTP client of an HTTP destination, and the boundary for httpx errors.

Every HTTP destination sends through one session: a pooled ``httpx.AsyncClient`` (keep-alive,
connection limits sized to the destination's concurrency, timeouts, TLS verification on unless the
user turns it off, which is reported as a warning). Each request runs in a ``slot()`` of the rate
limiter (the session's own, else the one ``deliver()`` made current), which also learns when it
ended and what the vendor's rate-limit headers said. What comes back is mapped, once, to the error
tree:

==========================================  ======================================================
transport error, timeout, dropped connection ``RetryableDestinationError``
429                                          ``RetryableDestinationError(retry_after=...)``; the
                                             limiter pauses every user until ``Retry-After``
5xx                                          ``RetryableDestinationError``
401, 403                                     ``DestinationError``: check the credentials
anything else                                returned: the destination reads per-record results
==========================================  ======================================================

Every message goes through the session's ``Redactor`` and names the request by method and path
only (no query string), so tokens in headers, URLs or echoed bodies never leave the process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from dbt_activate.delivery.context import RequestLog, TlsSettings, current_limiter, current_observers, current_tls
from dbt_activate.delivery.headers import body_snippet, parse_retry_after
from dbt_activate.delivery.ratelimit import RateLimiter
from dbt_activate.errors import ConfigError, DestinationError, Redactor, RetryableDestinationError
from dbt_activate.version import __version__

USER_AGENT = f"dbt-activate/{__version__}"


@dataclass(frozen=True)
class RateLimitHeaders:
    """Names of a vendor's rate-limit headers, e.g. HubSpot's::

        RateLimitHeaders("X-HubSpot-RateLimit-Remaining",
                         "X-HubSpot-RateLimit-Interval-Milliseconds", interval_scale=0.001)
    """

    remaining: str
    interval: str | None = None
    interval_scale: float = 1.0  # multiply the interval header by this to get seconds

    def read(self, headers: httpx.Headers) -> tuple[int, float | None] | None:
        try:
            remaining = int(headers[self.remaining])
        except (KeyError, ValueError):
            return None
        interval: float | None = None
        if self.interval and self.interval in headers:
            try:
                interval = float(headers[self.interval]) * self.interval_scale
            except ValueError:
                interval = None
        return remaining, interval


ResponseHook = Callable[[httpx.Response], None]


class InsecureTLSWarning(UserWarning):
    """TLS certificate verification was turned off for a destination."""


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default context (certifi's CA bundle), built once per process and shared by every session:
    loading the bundle takes ~0.2 s of CPU, which each destination's session used to pay again."""
    return httpx.create_ssl_context()


class HttpSession:
    """Pooled HTTP client of one destination; ``name`` prefixes every error message.

    ``response_hook`` sees every response before the status mapping and may raise a more precise
    error (e.g. ``QuotaExhaustedError`` for a daily-limit 429); it should build messages with
    ``session.redact``. ``transport`` replaces the network (``httpx.MockTransport`` in unit tests).
    ``on_request``/``on_warning`` default to the ``observing_http`` callbacks in effect when the
    session is created. Values of credential-like default headers are redacted without being listed.
    """

    def __init__(
        self,
        name: str,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        timeout: float = 30.0,
        verify: bool = True,
        ca_bundle: str | None = None,
        max_connections: int = 4,
        limiter: RateLimiter | None = None,
        rate_limit_headers: RateLimitHeaders | None = None,
        response_hook: ResponseHook | None = None,
        on_request: Callable[[RequestLog], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.redactor = Redactor([*secrets, *credential_values(headers or {})])
        self.timeout = timeout
        self._limiter = limiter
        self._rate_limit_headers = rate_limit_headers
        self._response_hook = response_hook
        observers = current_observers()
        self._on_request = on_request or observers.on_request
        warned = observers.warned if on_warning is None and observers.on_warning is not None else set()
        on_warning = on_warning or observers.on_warning
        # The destination's common keys (verify_tls, ca_bundle), set by the runner, apply to every
        # session it opens; an explicit argument can only make verification stricter or add a CA.
        common = current_tls()
        if common is not None:
            verify = verify and common.verify
            ca_bundle = ca_bundle or common.ca_bundle
        tls: ssl.SSLContext | bool
        if not verify:
            tls = False
            message = (f"{name}: TLS certificate verification is disabled in destinations.yml: anyone on "
                       "the network path can read or change what is sent, credentials included")
            if on_warning is None:
                warnings.warn(self.redact(message), InsecureTLSWarning, stacklevel=2)
            elif name not in warned:  # once per destination per run, however many sessions it opens
                warned.add(name)
                on_warning(self.redact(message))
        elif ca_bundle:
            try:
                tls = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load ca_bundle {ca_bundle!r}: {exc}", location=f"{name}.ca_bundle") from exc
        else:
            tls = True
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout),
            limits=limits,
            verify=tls,
            # Behind a proxy from the environment httpx mounts its own transports: left to it as they are.
            transport=transport or (None if _proxied() else _LazyTransport(verify=tls, limits=limits)),
            follow_redirects=False,
        )

    @classmethod
    def for_destination(cls, name: str, config: Mapping[str, Any], base_url: str = "", *,
                        default_timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                        **options: Any) -> HttpSession:
        """The session of a destination: ``timeout`` and the TLS keys (``verify_tls``, or the older
        ``verify``, and ``ca_bundle``) from its destinations.yml entry, and a User-Agent naming us."""
        timeout = config.get("timeout")
        tls = TlsSettings.of_config(config)
        return cls(name, base_url, headers={"User-Agent": USER_AGENT, **(headers or {})},
                   timeout=float(timeout) if timeout else default_timeout, verify=tls.verify,
                   ca_bundle=tls.ca_bundle, **options)

    def redact(self, text: str) -> str:
        return self.redactor(text)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        note: str = "",
    ) -> httpx.Response:
        """Send one request (after the rate limiter allows it); map failures as the module says.

        ``note`` goes with the request's line in the ``-v`` log: what the request is for when that is
        not the plain batch (never a value from a record: it must hold no personal data or secret)."""
        limiter = self._limiter or current_limiter()
        try:
            request = self._client.build_request(method, url, json=json, content=content, params=params,
                                                 headers=headers)
        except httpx.InvalidURL as exc:
            raise DestinationError(self.redact(f"{self.name}: invalid URL for {method}: {exc}")) from exc
        what = f"{self.name}: {method} {self.redact(request.url.path)}"
        slot = limiter.slot() if limiter is not None else contextlib.nullcontext(None)
        async with slot as ticket:
            started = time.perf_counter()
            try:
                response = await self._client.send(request)
            except httpx.HTTPError as exc:
                self._log(method, request.url.path, None, started, note)
                raise self._transport_error(what, exc, request.url) from exc
        self._log(method, request.url.path, response.status_code, started, note)
        if limiter is not None and self._rate_limit_headers is not None:
            seen = self._rate_limit_headers.read(response.headers)
            if seen is not None:
                limiter.observe(seen[0], seen[1], ticket=ticket)
        if self._response_hook is not None:
            self._response_hook(response)
        self._raise_for_status(what, response, limiter)
        return response

    def _raise_for_status(self, what: str, response: httpx.Response, limiter: RateLimiter | None) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429 and limiter is not None:
                limiter.throttled(retry_after)
            reason = "was throttled" if status == 429 else "failed on the server"
            raise RetryableDestinationError(
                self.redact(f"{what} {reason}: HTTP {status} {response.reason_phrase}"
                            f"{_wait_note(retry_after)}: {body_snippet(response)}"),
                retry_after=retry_after,
            )
        if status in (401, 403):
            raise DestinationError(self.redact(
                f"{what} was refused: HTTP {status} {response.reason_phrase}; check the credentials "
                f"of this destination in destinations.yml: {body_snippet(response)}"))

    def _transport_error(self, what: str, exc: httpx.HTTPError, url: httpx.URL) -> DestinationError:
        detail = self.redact(str(exc) or type(exc).__name__)
        if isinstance(exc, httpx.TimeoutException):
            return RetryableDestinationError(f"{what} timed out after {self.timeout:g}s ({detail})")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return DestinationError(f"{what}: invalid URL ({detail}); check base_url/url in destinations.yml")
        if _certificate_failure(exc):
            return DestinationError(
                f"{what}: TLS certificate verification failed ({detail}); set ca_bundle to the CA "
                "that signed the server's certificate")
        if isinstance(exc, httpx.TransportError):
            return RetryableDestinationError(
                f"{what}: connection failed or dropped ({_host_port(url)}: {detail})")
        return DestinationError(f"{what}: {detail}")

    def _log(self, method: str, path: str, status: int | None, started: float, note: str = "") -> None:
        if self._on_request is not None:
            self._on_request(RequestLog(method=method, path=self.redact(path), status=status,
                                        duration=time.perf_counter() - started, note=self.redact(note)))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


_CREDENTIAL_HEADER_WORDS = ("auth", "token", "key", "secret", "signature", "cookie", "session", "password")


def _proxied() -> bool:
    """Whether httpx would route requests through a proxy named in the environment (it reads these)."""
    return any(os.environ.get(name) for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                                  "https_proxy", "all_proxy"))


class _LazyTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, made on the first request.

    Making it loads the system's CA certificates and closing it imports anyio's backend: a fifth of the
    CPU a run with nothing to send spends outside dbt, where a destination opens its session and sends
    nothing (benchmarks/README.md, Start-up). The client, its URL and headers are still checked at once.
    """

    def __init__(self, *, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        self._verify, self._limits = verify, limits
        self._transport: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            # True: httpx's default context, built once per process (_default_tls) rather than per session.
            verify = _default_tls() if self._verify is True else self._verify
            self._transport = httpx.AsyncHTTPTransport(verify=verify, limits=self._limits)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def credential_values(headers: Mapping[str, str], *, all_headers: bool = False) -> list[str]:
    """Header values that are credentials (every value with ``all_headers``), and the token inside
    ``Bearer <token>``-style values, which can surface without its scheme (echoed in a body)."""
    found: list[str] = []
    for name, raw in headers.items():
        if not (all_headers or any(word in name.lower() for word in _CREDENTIAL_HEADER_WORDS)):
            continue
        value = str(raw)
        found.append(value)
        scheme, _, credential = value.partition(" ")
        if scheme.isalpha() and len(credential.strip()) >= 8:
            found.append(credential.strip())
    return found


def _wait_note(retry_after: float | None) -> str:
    return "" if retry_after is None else f" (retry after {retry_after:g}s)"


def _certificate_failure(exc: BaseException) -> bool:
    """A TLS verification failure: retrying cannot help, the user must fix ca_bundle or the host."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _host_port(url: httpx.URL) -> str:
    """``host:port`` of a request, never its user or password (a URL may carry them)."""
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return f"{url.host}:{port}" if port else url.host
