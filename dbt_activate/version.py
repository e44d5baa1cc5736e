"""The package version, on its own so that any layer can name it (User-Agent headers) without importing
the public API in ``dbt_activate/__init__.py``."""

from __future__ import annotations

__version__ = "0.1.0"
