"""The file destination: JSON Lines and CSV content, durability per batch, one file per run."""

from __future__ import annotations

import asyncio
import csv
import datetime
import errno
import json
import os
import stat
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.file.destination import FileDestination
from dbt_activate.errors import ConfigError, DestinationError
from tests.support.delivery import write_batches

FIELDS = ("id", "email", "amount", "signed_up", "seen_at", "vip", "tags")


def target(run_id: str = "run-1", name: str = "people__files__crm", fields: Sequence[str] = FIELDS) -> SyncTarget:
    return SyncTarget(name, "people.jsonl", Mode.MIRROR, tuple(FieldSpec(f, f) for f in fields), ("id",),
                      run_id=run_id)


def person(i: int, **overrides: Any) -> Record:
    values = {"id": i, "email": f"p{i}@example.com", "amount": Decimal("10.50"),
              "signed_up": datetime.date(2024, 1, i % 28 + 1),
              "seen_at": datetime.datetime(2024, 2, 1, 9, 30, tzinfo=datetime.timezone.utc), "vip": i % 2 == 0,
              "tags": ["a", "b"], **overrides}
    return Record(str(i), values)


def deliver(dest: FileDestination, tgt: SyncTarget, *batches: Batch) -> list[BatchResult]:
    return write_batches(dest, tgt, *batches)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_jsonl_lines_hold_operation_key_and_record(tmp_path: Path) -> None:
    dest = FileDestination("files", {"type": "file", "path": str(tmp_path)})
    upsert = Batch(Operation.UPSERT, [person(1), person(2, email=None, seen_at=datetime.datetime(2024, 3, 1, 8),
                                                        tags={"k": uuid.UUID(int=1)})])
    delete = Batch(Operation.DELETE, [Record("3", {"id": 3})])
    assert deliver(dest, target(), upsert, delete) == [BatchResult(), BatchResult()]
    [path] = files(tmp_path)
    assert path == tmp_path / "people__files__crm" / "run-1.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"operation": "upsert", "key": "1", "record": {
            "id": 1, "email": "p1@example.com", "amount": "10.50", "signed_up": "2024-01-02",
            "seen_at": "2024-02-01T09:30:00+00:00", "vip": False, "tags": ["a", "b"]}},
        {"operation": "upsert", "key": "2", "record": {
            "id": 2, "email": None, "amount": "10.50", "signed_up": "2024-01-03", "seen_at": "2024-03-01T08:00:00",
            "vip": True, "tags": {"k": str(uuid.UUID(int=1))}}},
        {"operation": "delete", "key": "3", "record": {"id": 3}},
    ]


def test_jsonl_embeds_json_typed_text_as_json(tmp_path: Path) -> None:
    tgt = SyncTarget("events", "x", Mode.APPEND, (FieldSpec("id", "id", "INTEGER"), FieldSpec("doc", "doc", "JSON"),
                                                  FieldSpec("raw", "raw", "VARCHAR")), (), run_id="r")
    batch = Batch(Operation.APPEND, [Record("1", {"id": 1, "doc": '{"a": [1]}', "raw": '{"a": [1]}'}),
                                     Record("2", {"id": 2, "doc": "not json", "raw": None})])
    deliver(FileDestination("files", {"path": str(tmp_path)}), tgt, batch)
    [path] = files(tmp_path)
    assert [json.loads(line)["record"] for line in path.read_text().splitlines()] == [
        {"id": 1, "doc": {"a": [1]}, "raw": '{"a": [1]}'}, {"id": 2, "doc": "not json", "raw": None}]


def test_csv_has_one_header_and_fields_in_target_order(tmp_path: Path) -> None:
    dest = FileDestination("files", {"path": str(tmp_path), "format": "csv"})
    tgt = target(fields=("email", "amount", "signed_up", "seen_at", "vip", "tags"))  # identity not among fields
    batches = (Batch(Operation.UPSERT, [person(1), person(2, email='say "hi",\nbye')]),
               Batch(Operation.CLEAR, [Record("7", {"id": 7})]))
    assert deliver(dest, tgt, *batches) == [BatchResult(), BatchResult()]
    [path] = files(tmp_path)
    assert path.suffix == ".csv"
    assert read_csv(path) == [
        ["operation", "key", "email", "amount", "signed_up", "seen_at", "vip", "tags", "id"],
        ["upsert", "1", "p1@example.com", "10.50", "2024-01-02", "2024-02-01T09:30:00+00:00", "false", '["a","b"]',
         "1"],
        ["upsert", "2", 'say "hi",\nbye', "10.50", "2024-01-03", "2024-02-01T09:30:00+00:00", "true", '["a","b"]',
         "2"],
        ["clear", "7", "", "", "", "", "", "", "7"],
    ]


def test_every_batch_is_fsynced_after_its_lines_are_written(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[int, int]] = []  # (inode, size at fsync) for regular files
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            synced.append((info.st_ino, info.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    dest = FileDestination("files", {"path": str(tmp_path)})
    batches = [Batch(Operation.UPSERT, [person(i) for i in range(n, n + 3)]) for n in (0, 3, 6)]
    deliver(dest, target(), *batches)
    [path] = files(tmp_path)
    inode = path.stat().st_ino
    sizes = [size for ino, size in synced if ino == inode]
    assert len(sizes) == 3  # once per batch, not per record
    assert sizes[0] < sizes[1] < sizes[2] == path.stat().st_size  # each fsync came after its lines
    assert len(path.read_text().splitlines()) == 9


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_nan_and_infinity_are_rejected_with_a_reason(tmp_path: Path, fmt: str) -> None:
    dest = FileDestination("files", {"path": str(tmp_path), "format": fmt})
    batch = Batch(Operation.UPSERT, [person(1), person(2, amount=float("nan")), person(3, amount=float("-inf")),
                                     person(4, amount=Decimal("NaN")), person(5, tags=[1.0, float("inf")]),
                                     person(6, amount=1.25)])
    [result] = deliver(dest, target(), batch)
    assert result.rejected == {
        "2": "field 'amount' is nan: NaN and infinite numbers cannot be written",
        "3": "field 'amount' is -inf: NaN and infinite numbers cannot be written",
        "4": "field 'amount' is NaN: NaN and infinite numbers cannot be written",
        "5": "cannot encode record: Out of range float values are not JSON compliant",
    }
    [path] = files(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "nan" not in text.lower() and "inf" not in text.lower()
    assert len(text.splitlines()) == (2 if fmt == "jsonl" else 3)  # records 1 and 6 (+ csv header)


def test_one_file_per_run_and_a_resumed_run_appends_to_its_own(tmp_path: Path) -> None:
    config = {"path": str(tmp_path), "format": "csv"}
    deliver(FileDestination("files", config), target("run-1"), Batch(Operation.UPSERT, [person(1)]))
    deliver(FileDestination("files", config), target("run-2"), Batch(Operation.UPSERT, [person(2)]))
    deliver(FileDestination("files", config), target("run-1"), Batch(Operation.UPSERT, [person(3)]))
    run1, run2 = files(tmp_path)
    assert (run1.name, run2.name) == ("run-1.csv", "run-2.csv")
    assert [row[1] for row in read_csv(run1)] == ["key", "1", "3"]
    assert [row[1] for row in read_csv(run2)] == ["key", "2"]


def test_an_unfinished_line_from_an_interrupted_write_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "people__files__crm" / "run-1.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"operation":"upsert","key":"1","record":{"id":1}}\n{"operation":"ups')
    deliver(FileDestination("files", {"path": str(tmp_path)}), target(), Batch(Operation.UPSERT, [person(2)]))
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["1", "2"]


def test_sync_name_and_run_id_are_made_safe_for_the_filesystem(tmp_path: Path) -> None:
    deliver(FileDestination("files", {"path": str(tmp_path / "out")}), target("2024-01-01T10:00:00/../x", "../../etc"),
            Batch(Operation.UPSERT, [person(1)]))
    [path] = files(tmp_path)
    assert path.relative_to(tmp_path / "out").parts == ("etc", "2024-01-01T10_00_00_.._x.jsonl")


def test_relative_path_is_relative_to_the_working_directory(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    deliver(FileDestination("files", {"path": "exports"}), target(), Batch(Operation.UPSERT, [person(1)]))
    assert files(tmp_path) == [tmp_path / "exports" / "people__files__crm" / "run-1.jsonl"]


def test_no_file_when_nothing_is_written(tmp_path: Path) -> None:
    results = deliver(FileDestination("files", {"path": str(tmp_path)}), target(), Batch(Operation.UPSERT, []),
                      Batch(Operation.UPSERT, [person(1, amount=float("nan"))]))
    assert [list(r.rejected) for r in results] == [[], ["1"]]
    assert files(tmp_path) == []


def test_a_failed_write_is_not_acknowledged_and_leaves_the_file_as_it_was(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dest = FileDestination("files", {"path": str(tmp_path)})
    tgt = target()
    real_write = os.write

    async def go() -> None:
        await dest.open(tgt)
        try:
            await dest.write(tgt, Batch(Operation.UPSERT, [person(1)]))

            def disk_full(fd: int, data: Any) -> int:
                real_write(fd, bytes(data[:10]))  # a partial write, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(os, "write", disk_full)
            with pytest.raises(DestinationError, match="No space left on device"):
                await dest.write(tgt, Batch(Operation.UPSERT, [person(2)]))
        finally:
            await dest.close()

    asyncio.run(go())
    [path] = files(tmp_path)
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["1"]


def test_format_and_path_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format 'xml' is not one of jsonl, csv"):
        FileDestination("files", {"path": str(tmp_path), "format": "xml"}).check_target(target())
    with pytest.raises(ConfigError, match="'path'"):
        FileDestination("files", {"path": " "}).check_target(target())


def test_describe_request_shows_lines_without_writing(tmp_path: Path) -> None:
    dest = FileDestination("files", {"path": str(tmp_path)})
    described = dest.describe_request(target(), Batch(Operation.DELETE, [Record("9", {"id": 9})]))
    assert described == {"file": str(tmp_path / "people__files__crm" / "run-1.jsonl"), "format": "jsonl",
                         "lines": ['{"operation":"delete","key":"9","record":{"id":9}}']}
    assert files(tmp_path) == []


def test_many_batches_of_many_rows_are_all_written(tmp_path: Path) -> None:
    dest = FileDestination("files", {"path": str(tmp_path)})
    batches = [Batch(Operation.UPSERT, [person(i) for i in range(n, n + 10_000)]) for n in range(0, 50_000, 10_000)]
    results = deliver(dest, target(), *batches)
    assert all(r == BatchResult() for r in results)
    [path] = files(tmp_path)
    with path.open(encoding="utf-8") as f:
        keys = [json.loads(line)["key"] for line in f]
    assert keys == [str(i) for i in range(50_000)]
