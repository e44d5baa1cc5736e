"""How messages count and suggest: "1 request", "2 requests"; "did you mean 'upsert'?".

Standard library only (``difflib``), so every layer that words a message for a person can use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Close enough to be the word the user meant: difflib's ratio, 0..1. 0.6 (difflib's default) takes
# `upsrt` -> `upsert` and `emial` -> `email`, and leaves `nosuch` without a suggestion.
_CUTOFF = 0.6


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 request``, ``2 requests``, ``1,000 rows``: the count with its noun in the right number."""
    word = noun if count == 1 else (plural_form or f"{noun}s")
    return f"{count:,} {word}"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely a typo of, or None when none is close."""
    options = [c for c in choices if isinstance(c, str)]
    exact = {c.lower(): c for c in options}.get(word.lower())  # `Email` for `email`: a case slip
    if exact is not None and exact != word:
        return exact
    found = difflib.get_close_matches(word, options, n=1, cutoff=_CUTOFF)
    return found[0] if found else None


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'upsert'?"`` to append to an error message, or ``""``."""
    if not isinstance(word, str):
        return ""
    found = closest(word, choices)
    return f"; did you mean {found!r}?" if found is not None else ""
