"""The local per-batch journal: what the destination acknowledged, before the warehouse knows it.

After every acknowledged batch its rows are appended to a CSV file and fsync'd; from time to time
(and at the end of the sync) the file is loaded into the warehouse snapshot in one transaction and
removed. A run killed in between leaves the file behind, and the next run of that sync applies it
before diffing, so it resends only what was never acknowledged. The warehouse state is therefore
never ahead of the destination, and at most the batches in flight at the kill are sent twice.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, cast

ACK_COLUMNS = ("op", "sync_key", "fingerprint", "record_identity")
REJECT_COLUMNS = ("sync_key", "reason")
# How PostgreSQL and DuckDB read the journal back (COPY ... csv): None is written as an empty
# unquoted field, which both load as NULL.
_CSV_DIALECT: dict[str, Any] = {"lineterminator": "\n"}
# Snapshot fingerprint of a record a killed run sent without an answer: matches no real fingerprint,
# so the next diff sends it again, or deletes it if its row left the model.
MAYBE_FINGERPRINT = "unconfirmed"
_QUOTE = '"'


def csv_text(rows: Sequence[Sequence[str | None]]) -> str | None:
    """The text ``csv.writer`` writes for ``rows`` of text fields whose last field alone may need
    quoting (an identity's JSON: quoted for its '"' and ','); None for any other rows (a None or
    non-text field, a key with a comma, quote or line break), which the csv module then writes.

    The csv module's writer tests every character of every field against the line terminator:
    1.4 µs per acknowledgement row, a sixth of a record's CPU on the way to HubSpot, where these
    joins take a fifth of that (benchmarks/README.md, record_path)."""
    if min(map(len, rows), default=2) < 2:
        return None
    text = cast("Sequence[Sequence[str]]", rows)  # or a join below raises TypeError
    try:
        heads = [",".join(row[:-1]) for row in text]
        lasts = [row[-1] for row in text]
        head, last = "".join(heads), "".join(lasts)  # one scan per column for what needs the csv module
    except TypeError:
        return None
    if (head.count(",") != sum(map(len, rows)) - 2 * len(rows) or '"' in head or "\n" in head or "\r" in head
            or "\n" in last or "\r" in last):
        return None
    return "".join([f"{h},\"{v.replace(_QUOTE, _QUOTE * 2)}\"\n" if _QUOTE in v or "," in v else f"{h},{v}\n"
                    for h, v in zip(heads, lasts, strict=True)])


def _write_rows(fh: IO[str], writer: Any, rows: Sequence[Sequence[str | None]]) -> None:
    """``writer.writerows(rows)``, or the same text joined directly where ``csv_text`` can (the usual rows)."""
    text = csv_text(rows)
    if text is None:
        writer.writerows(rows)
    else:
        fh.write(text)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class JournalFile:
    """An append-only CSV file of one kind of row.

    ``flush`` hands the rows to the OS after every batch: they survive a killed process, which is what
    the journal is for. ``close`` (at each checkpoint) also fsyncs, so after a power loss at most the
    rows since the last checkpoint are sent again. An fsync per batch cost ~9 ms on the event loop,
    a third of a 100k-row HubSpot sync's wall time (benchmarks/README.md, Peers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._fh, **_CSV_DIALECT)  # straight to the file: no string per line

    def append(self, values: Sequence[str | None]) -> None:
        assert self._fh is not None, "journal file already closed"
        self._writer.writerow(values)
        self.rows += 1

    def extend(self, rows: Sequence[Sequence[str | None]]) -> None:
        """``append`` for each of ``rows``, in one call: a batch's acknowledgements at once."""
        assert self._fh is not None, "journal file already closed"
        _write_rows(self._fh, self._writer, rows)
        self.rows += len(rows)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


class InflightLog:
    """Batches handed to the destination and not yet settled: one ``start`` row per record (batch id,
    diff op, key, identity) before the request, one ``done`` row once its acknowledgements are
    journaled (or it failed). A killed run leaves ``start`` rows without ``done``: those records may
    or may not have reached the destination. The next run sends them again (in create/append modes
    they may then be there twice, and it reports how many) and, when the sync sends deletes, marks
    them as maybe-present in the snapshot so a row that left the model meanwhile is still deleted.
    Rows are flushed to the OS, not fsync'd: they survive a killed process, which is what they are
    for, without a second disk sync per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def _write(self, rows: Sequence[Sequence[str | None]]) -> None:
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8", newline="")
            self._writer = csv.writer(self._fh, **_CSV_DIALECT)
        _write_rows(self._fh, self._writer, rows)
        self._fh.flush()

    def started(self, batch_id: int, records: Iterable[tuple[str, str, str]]) -> None:
        """``records``: (diff op, key, identity json) of every record of the batch."""
        batch = str(batch_id)
        self._write([("start", batch, op, key, identity) for op, key, identity in records])

    def settled(self, batch_id: int) -> None:
        self._write([("done", str(batch_id), None, None, None)])

    def unconfirmed(self) -> list[tuple[str, str, str]]:
        """(op, key, identity) of the records a previous run started and never settled."""
        if not self.path.exists():
            return []
        pending: dict[str, list[tuple[str, str, str]]] = {}
        with self.path.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) != 5:
                    continue  # a line cut short by the kill
                if row[0] == "start":
                    pending.setdefault(row[1], []).append((row[2], row[3], row[4]))
                elif row[0] == "done":
                    pending.pop(row[1], None)
        return [record for records in pending.values() for record in records]

    def remove(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)


class Journal:
    """The journal directory of one sync: ``<target>/activate/journal/<sync>/<seq>.{acks,rejects}.csv``
    and ``inflight.log`` (``InflightLog``)."""

    def __init__(self, root: Path, sync_name: str) -> None:
        self.directory = root / _slug(sync_name)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.inflight = InflightLog(self.directory / "inflight.log")

    def leftovers(self) -> list[tuple[Path | None, Path | None]]:
        """Segments a killed run left behind, oldest first, as (acks, rejects) pairs."""
        stems = sorted({p.name.split(".", 1)[0] for p in self.directory.glob("*.csv")})
        pairs = []
        for stem in stems:
            acks, rejects = self.directory / f"{stem}.acks.csv", self.directory / f"{stem}.rejects.csv"
            pairs.append((acks if acks.exists() else None, rejects if rejects.exists() else None))
        return pairs

    def write_maybe_present(self, records: Sequence[tuple[str, str, str]]) -> Path:
        """An acks file (sorted before every segment) marking ``records`` as maybe in the destination."""
        path = self.directory / f"{0:08d}.acks.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, **_CSV_DIALECT).writerows(("change", key, MAYBE_FINGERPRINT, identity)
                                                     for _, key, identity in records)
            fh.flush()
            os.fsync(fh.fileno())
        return path

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
