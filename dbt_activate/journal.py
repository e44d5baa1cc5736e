"""The local per-batch journal: what the destination acknowledged, before the warehouse knows it.

After every acknowledged batch its rows are appended to a CSV file and fsync'd; from time to time
(and at the end of the sync) the file is loaded into the warehouse snapshot in one transaction and
removed. A run killed in between leaves the file behind, and the next run of that sync applies it
before diffing, so it resends only what was never acknowledged. The warehouse state is therefore
never ahead of the destination, and at most the batches in flight at the kill are sent twice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from dbt_activate.warehouse.connection import csv_line

ACK_COLUMNS = ("op", "sync_key", "fingerprint", "record_identity")
REJECT_COLUMNS = ("sync_key", "reason")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class JournalFile:
    """An append-only CSV file of one kind of row, durable after each ``flush``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = path.open("a", encoding="utf-8", newline="")

    def append(self, values: Sequence[str | None]) -> None:
        assert self._fh is not None, "journal file already closed"
        self._fh.write(csv_line(values))
        self.rows += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None


class Journal:
    """The journal directory of one sync: ``<target>/activate/journal/<sync>/<seq>.{acks,rejects}.csv``."""

    def __init__(self, root: Path, sync_name: str) -> None:
        self.directory = root / _slug(sync_name)
        self.directory.mkdir(parents=True, exist_ok=True)

    def leftovers(self) -> list[tuple[Path | None, Path | None]]:
        """Segments a killed run left behind, oldest first, as (acks, rejects) pairs."""
        stems = sorted({p.name.split(".", 1)[0] for p in self.directory.glob("*.csv")})
        pairs = []
        for stem in stems:
            acks, rejects = self.directory / f"{stem}.acks.csv", self.directory / f"{stem}.rejects.csv"
            pairs.append((acks if acks.exists() else None, rejects if rejects.exists() else None))
        return pairs

    def new_segment(self) -> JournalSegment:
        existing = [int(p.name.split(".", 1)[0]) for p in self.directory.glob("*.csv")
                    if p.name.split(".", 1)[0].isdigit()]
        seq = max(existing, default=0) + 1
        return JournalSegment(self.directory, f"{seq:08d}")


class JournalSegment:
    """The pair of files written between two checkpoints."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.acks = JournalFile(directory / f"{stem}.acks.csv")
        self.rejects = JournalFile(directory / f"{stem}.rejects.csv")

    @property
    def rows(self) -> int:
        return self.acks.rows + self.rejects.rows

    def flush(self) -> None:
        self.acks.flush()
        self.rejects.flush()

    def close(self) -> None:
        self.acks.close()
        self.rejects.close()

    def remove(self) -> None:
        self.close()
        for f in (self.acks.path, self.rejects.path):
            f.unlink(missing_ok=True)
