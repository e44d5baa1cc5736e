"""One error tree for dbt-activate.

Foreign exceptions (dbt, database drivers, httpx, yaml) are mapped to these once, at the boundary
where they happen, with ``raise ... from exc``. ``cli.py`` turns them into exit codes:
``ConfigError`` -> 2 (the user must fix something before anything can run), every other
``ActivateError`` -> 1 for the sync it happened in, and anything unexpected -> 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_SYNC_FAILED = 1
EXIT_CONFIG = 2


class ActivateError(Exception):
    """Base of every error dbt-activate raises on purpose."""

    exit_code = EXIT_SYNC_FAILED


class ConfigError(ActivateError):
    """Bad configuration or usage: an ``activate`` block, destinations.yml, a flag, missing artifacts.

    ``location`` names where the problem is, e.g.
    ``models/crm/schema.yml: people.config.meta.activate[0].mode``.
    """

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class IdentifierError(ConfigError, ValueError):
    """A schema, table or column name from YAML that cannot be quoted safely (empty, NUL, too long).

    Also a ``ValueError``, which quoting raised before it had a place in this tree."""


class ArtifactsError(ConfigError):
    """dbt artifacts (manifest.json, run_results.json) are missing or unreadable."""


class WarehouseError(ActivateError):
    """The warehouse refused a query or the connection was lost."""


class DestinationError(ActivateError):
    """A destination failed as a whole (not one record): the batch was not acknowledged."""

    retryable = False


class RetryableDestinationError(DestinationError):
    """Throttling, 5xx, timeouts, dropped connections: worth another try after a pause."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class QuotaExhaustedError(DestinationError):
    """A daily (or other long-window) quota is used up: stop the sync, keep the rest for next run."""


class SyncLockedError(ActivateError):
    """Another run holds the lock of this sync."""


_SECRET_PLACEHOLDER = "***"


class Redactor:
    """Replaces known secret values with ``***`` in any text that leaves the process."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._pattern: re.Pattern[str] | None = None
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # Very short values would redact ordinary words; credentials are never that short.
        self._secrets.update(s for s in secrets if s and len(s) >= 4)
        if self._secrets:
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(_SECRET_PLACEHOLDER, text)
