"""What ``deliver()`` and the runner hand down to the HTTP sessions of destinations.

The destination seam (``destinations/base.py``) gives a destination only its name and config, yet
the rate limiter belongs to the run (one per destination account, shared by every sync) and the
``-v`` request log and TLS warnings belong to the console, and the common TLS keys of
destinations.yml (``verify_tls``, ``ca_bundle``) must reach every session of every HTTP type.
Context variables carry them from the caller to whatever ``HttpSession`` the destination made,
without widening the seam: asyncio copies the context into every task, so concurrent batches each see their own values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbt_activate.delivery.ratelimit import RateLimiter


@dataclass(frozen=True)
class RequestLog:
    """One HTTP request, for ``-v`` output: never a body, never a query string, never a secret."""

    method: str
    path: str
    status: int | None  # None when no response came back (timeout, dropped connection)
    duration: float  # seconds
    note: str = ""  # why the destination made this request when it is not a plain batch (e.g. a split)


@dataclass(frozen=True)
class HttpObservers:
    """Callbacks of the console for every HTTP session opened while they are in use."""

    on_request: Callable[[RequestLog], None] | None = None
    on_warning: Callable[[str], None] | None = None
    # Warnings already given in this block (e.g. TLS off, once per destination however many sessions).
    warned: set[str] = field(default_factory=set, compare=False)


@dataclass(frozen=True)
class TlsSettings:
    """The common ``verify_tls`` / ``ca_bundle`` keys of the destination being synced."""

    verify: bool = True
    ca_bundle: str | None = None

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> TlsSettings:
        """From a destinations.yml entry: ``verify_tls``, or its older name ``verify`` (destinations/base.py
        declares it ``formerly``; this layer reads it without importing that one)."""
        return cls(verify=config.get("verify_tls") is not False and config.get("verify") is not False,
                   ca_bundle=config.get("ca_bundle") or None)


_limiter: ContextVar[RateLimiter | None] = ContextVar("dbt_activate_limiter", default=None)
_tls: ContextVar[TlsSettings | None] = ContextVar("dbt_activate_tls", default=None)
_observers: ContextVar[HttpObservers | None] = ContextVar("dbt_activate_http_observers", default=None)
_NO_OBSERVERS = HttpObservers()


def current_limiter() -> RateLimiter | None:
    """The limiter of the batch being delivered, if any (set by ``deliver()``)."""
    return _limiter.get()


@contextlib.contextmanager
def using_limiter(limiter: RateLimiter | None) -> Iterator[None]:
    token = _limiter.set(limiter)
    try:
        yield
    finally:
        _limiter.reset(token)


def current_tls() -> TlsSettings | None:
    """TLS settings of the destination being synced, if the runner set them (``using_tls``)."""
    return _tls.get()


@contextlib.contextmanager
def using_tls(settings: TlsSettings | None) -> Iterator[None]:
    """Sessions created inside the block (and in tasks started inside it) use ``settings``."""
    token = _tls.set(settings)
    try:
        yield
    finally:
        _tls.reset(token)


def current_observers() -> HttpObservers:
    return _observers.get() or _NO_OBSERVERS


@contextlib.contextmanager
def observing_http(
    on_request: Callable[[RequestLog], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Route request logs and warnings of sessions opened (and requests made) inside the block."""
    token = _observers.set(HttpObservers(on_request=on_request, on_warning=on_warning))
    try:
        yield
    finally:
        _observers.reset(token)
