"""The ``file`` destination: every change as a line of ``<path>/<sync>/<run_id>.jsonl`` (or ``.csv``).

One file per sync per run, appended batch by batch; a batch is acknowledged only once its lines are
written and fsync'd, so the file is never behind the sync state. The file is created with the
first batch that has lines (a run with no changes leaves no empty file). When a resumed run
reopens its file, an unfinished last line left by an interrupted write is cut off first; the
records on it were never acknowledged and will come again.

JSON Lines: ``{"operation": "upsert", "key": "42", "record": {...}}``; dates and times ISO 8601,
Decimals as strings (every digit kept), bytes base64, intervals ISO 8601 durations; text of a JSON
typed column (JSON, VARIANT, SUPER) is embedded as JSON. CSV: a header ``operation,key,<fields>`` (the
sync's fields, then identity fields not among them), ``true``/``false``, NULL as an empty cell,
lists and dicts as JSON text. Records holding NaN or an infinity are rejected: neither format has
a way to say it that readers agree on.

Per-record work is one C-level JSON encode (or one csv row); used by the 1M-row memory benchmark.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, ClassVar

from dbt_activate.core.types import Batch, BatchResult, Mode, Record, SyncTarget
from dbt_activate.core.values import is_nonfinite, json_default, rejection_reason
from dbt_activate.destinations.base import ConfigKey, Destination
from dbt_activate.destinations.blocking import BlockingWorker
from dbt_activate.destinations.sql import warehouse_type
from dbt_activate.errors import ConfigError, DestinationError

FORMATS = ("jsonl", "csv")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_ENCODE_STR: Callable[[str], str] = encode_basestring  # the C function, skipping encode()'s dispatch
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=json_default).encode


def safe_name(name: str) -> str:
    """A file or directory name from a sync name or run id: no separators, no leading dot."""
    return _UNSAFE.sub("_", name).strip("._")[:200] or "_"


def _finite_float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise ValueError(f"{value} cannot be written")


def _finite_decimal(value: Decimal) -> Decimal:
    if value.is_finite():
        return value
    raise ValueError(f"{value} cannot be written")


# Exact-type dispatch: one dict lookup per cell instead of an isinstance chain.
_CSV_CONVERT: dict[type, Callable[[Any], Any]] = {
    bool: lambda v: "true" if v else "false", float: _finite_float, Decimal: _finite_decimal,
    datetime.datetime: datetime.datetime.isoformat, datetime.date: datetime.date.isoformat,
    dict: _ENCODE, list: _ENCODE, tuple: _ENCODE,
}


def _csv_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    convert = _CSV_CONVERT.get(kind)
    if convert is not None:
        return convert(value)
    if isinstance(value, (float, Decimal)) and is_nonfinite(value):  # subclasses
        raise ValueError(f"{value} cannot be written")
    if isinstance(value, (dict, list, tuple)):
        return _ENCODE(value)
    if isinstance(value, (int, str, float, Decimal)):
        return value
    return json_default(value)  # times, UUIDs, bytes, intervals… as in JSON, without quotes


class _Sink:
    """csv.writer target collecting one string per row (the C writer calls write once per row)."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


class FileDestination(Destination):
    kind = "file"
    description = "Every change as a line of a JSON Lines or CSV file: <path>/<sync>/<run_id>.<format>."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("path", str, required=True,
                  help="Directory for the files; relative paths are relative to the working directory."),
        ConfigKey("format", str, default="jsonl", help="jsonl (one JSON object per line) or csv."),
    )
    modes = frozenset(Mode)
    # Two batches are held at once (one filling, one writing): 2,000 rows keep that under ~6 MB and
    # write as fast as 10,000 (benchmarks/README.md, Memory).
    batch_size = 2_000
    max_concurrency = 1

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._worker = BlockingWorker(name)
        self._fallback_run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self._path: Path | None = None
        self._fd: int | None = None

    @property
    def format(self) -> str:
        return str(self.config.get("format") or "jsonl")

    def file_path(self, target: SyncTarget) -> Path:
        """Where ``target``'s lines go in this run (absolute)."""
        base = Path(str(self.config.get("path") or "")).expanduser().absolute()
        run_id = safe_name(target.run_id or self._fallback_run_id)
        return base / safe_name(target.sync_name) / f"{run_id}.{self.format}"

    def check_target(self, target: SyncTarget) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"file destination {self.name!r}: format {self.format!r} is not one of "
                              f"{', '.join(FORMATS)}")
        if not str(self.config.get("path") or "").strip():
            raise ConfigError(f"file destination {self.name!r}: 'path' (a directory) is required")

    async def open(self, target: SyncTarget) -> None:
        self.check_target(target)
        await self._worker.run(self._open_blocking, target)

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if self._path is None:
            await self.open(target)
        return await self._worker.run(self._write_blocking, target, batch)

    async def close(self) -> None:
        await self._worker.shutdown(self._close_blocking)

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        lines, _, _ = self._lines(target, batch)
        return {"file": str(self.file_path(target)), "format": self.format,
                "lines": [line.rstrip("\r\n") for line in lines]}

    # -- worker thread --------------------------------------------------------------------------

    def _open_blocking(self, target: SyncTarget) -> None:
        path = self.file_path(target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationError(f"file destination {self.name!r}: cannot create {path.parent}: "
                                   f"{exc.strerror or exc}") from exc
        self._path = path

    def _write_blocking(self, target: SyncTarget, batch: Batch) -> BatchResult:
        lines, keys, rejected = self._lines(target, batch)
        result = BatchResult(rejected=rejected)
        if not lines:
            return result
        data = _utf8(lines, keys, rejected)
        if not data:
            return result
        fd, size = self._file(target)
        if size == 0 and self.format == "csv":
            data = self._csv_header(target) + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # leave the file as before: this batch is not acknowledged
                os.ftruncate(fd, size)
            raise DestinationError(f"file destination {self.name!r}: cannot write {self._path}: "
                                   f"{exc.strerror or exc}") from exc
        return result

    def _close_blocking(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _file(self, target: SyncTarget) -> tuple[int, int]:
        """The open file and its size, opening (and creating) it on first use."""
        if self._fd is None:
            path = self._path or self.file_path(target)
            try:
                self._fd = fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
                if _trim_unfinished_line(fd) == 0:
                    _fsync_dir(path.parent)  # a new file: make its directory entry durable
            except OSError as exc:
                raise DestinationError(f"file destination {self.name!r}: cannot open {path}: "
                                       f"{exc.strerror or exc}") from exc
        return self._fd, os.fstat(self._fd).st_size

    def _columns(self, target: SyncTarget) -> tuple[str, ...]:
        names = target.field_names
        return (*names, *(f for f in target.identity if f not in names))

    def _csv_header(self, target: SyncTarget) -> bytes:
        lines: list[str] = []
        csv.writer(_Sink(lines)).writerow(["operation", "key", *self._columns(target)])
        return lines[0].encode("utf-8")

    def _lines(self, target: SyncTarget, batch: Batch) -> tuple[list[str], list[str], dict[str, str]]:
        encode_line = (self._jsonl_encoder if self.format == "jsonl" else self._csv_encoder)(target, batch)
        lines: list[str] = []
        keys: list[str] = []
        rejected: dict[str, str] = {}
        for record in batch.records:
            try:
                lines.append(encode_line(record))
            except (ValueError, TypeError, RecursionError, csv.Error) as exc:
                rejected[record.key] = rejection_reason(record.values, exc)
                continue
            keys.append(record.key)
        return lines, keys, rejected

    def _jsonl_encoder(self, target: SyncTarget, batch: Batch) -> Callable[[Record], str]:
        head = '{"operation":' + _ENCODE(batch.operation.value) + ',"key":'
        # JSON, VARIANT, SUPER columns arrive as JSON text: embed them as JSON, not as a quoted string.
        json_text = [f.field for f in target.fields if warehouse_type(f.data_type).family == "json"]

        def encode(record: Record) -> str:
            values = record.values
            if json_text:
                values = dict(values)
                for name in json_text:
                    if isinstance(values.get(name), str):
                        with contextlib.suppress(ValueError):
                            values[name] = json.loads(values[name])
            elif type(values) is not dict:
                values = dict(values)
            return f'{head}{_ENCODE_STR(record.key)},"record":{_ENCODE(values)}}}\n'

        return encode

    def _csv_encoder(self, target: SyncTarget, batch: Batch) -> Callable[[Record], str]:
        columns = self._columns(target)
        operation = batch.operation.value
        lines: list[str] = []
        writerow = csv.writer(_Sink(lines)).writerow

        def encode(record: Record) -> str:
            get = record.values.get
            writerow([operation, record.key, *[_csv_value(get(c)) for c in columns]])
            return lines.pop()

        return encode


def _utf8(lines: Sequence[str], keys: Sequence[str], rejected: dict[str, str]) -> bytes:
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: find its line, keep the others
        parts: list[bytes] = []
        for key, line in zip(keys, lines, strict=True):
            try:
                parts.append(line.encode("utf-8"))
            except UnicodeEncodeError as exc:
                rejected[key] = f"text is not valid Unicode ({exc.reason}): cannot be written as UTF-8"
        return b"".join(parts)


def _trim_unfinished_line(fd: int) -> int:
    """Cut what follows the last newline (an interrupted write); return the resulting size."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - 65536)
        os.lseek(fd, start, os.SEEK_SET)
        chunk = os.read(fd, end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end != size:
        os.ftruncate(fd, end)
    return end


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows); the file itself is fsync'd
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
