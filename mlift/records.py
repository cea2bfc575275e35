"""The record that flows through every pipeline, and its shard I/O.

A record is `{"id", "lang", <text fields>..., "meta"}` on disk: one JSON object per line, sharded as
`<dir>/shard-00003-of-00008.jsonl`, which `datasets.load_dataset("json", data_files=...)` reads directly.
Writes are atomic (temp file + rename), so a killed process never leaves a half shard behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlift.textio import strip_bom

RESERVED = ("id", "lang", "meta")


@dataclass
class Record:
    """One example at any stage: a stable id, a language (FLORES code), text fields, and meta (scores, provenance)."""

    id: str
    lang: str
    fields: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "lang": self.lang, **self.fields, "meta": self.meta}

    @classmethod
    def from_json(cls, obj: Any) -> Record:
        if not isinstance(obj, dict):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
        for key in ("id", "lang"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise RecordError(f"missing or empty string field {key!r}")
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise RecordError(f"'meta' must be an object, got {type(meta).__name__}")
        fields = {k: v for k, v in obj.items() if k not in RESERVED}
        return cls(id=obj["id"], lang=obj["lang"], fields=fields, meta=meta)


class RecordError(ValueError):
    pass


@dataclass
class BadLine:
    """A line that could not be read as a record: it goes to quarantine with where it came from and why."""

    source: str
    line: int
    raw: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw[:10_000]}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object or BadLine). Undecodable bytes and bad JSON become BadLines, never crashes.
    A file holding one JSON array (a .json export where JSON Lines was expected) is read as what it is: its items,
    numbered from 1, instead of one malformed line per line."""
    path = Path(path)
    items = _json_array(path)
    if items is not None:
        yield from enumerate(items, start=1)
        return
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            raw = strip_bom(raw, first=lineno == 1)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, BadLine(str(path), lineno, raw.decode("utf-8", "replace"), f"undecodable bytes: {exc}")
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as exc:
                yield lineno, BadLine(str(path), lineno, text, f"malformed JSON: {exc}")


def _json_array(path: Path) -> list[Any] | None:
    with open(path, "rb") as fh:
        head = strip_bom(fh.read(4096), first=True).lstrip()
    if not head.startswith(b"["):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # not one array after all: read line by line, each bad line reported
    return data if isinstance(data, list) else None


def read_records(path: str | Path) -> Iterator[Record | BadLine]:
    """Records of one shard; lines that are not valid records come back as BadLines with the reason."""
    for lineno, obj in read_jsonl(path):
        if isinstance(obj, BadLine):
            yield obj
            continue
        try:
            yield Record.from_json(obj)
        except RecordError as exc:
            yield BadLine(str(path), lineno, dumps(obj), f"not a record: {exc}")


class AtomicWriter:
    """Write lines to `path` through a temp file that is renamed into place on commit(); abort() leaves nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._fh: TextIO | None = open(self.tmp, "w", encoding="utf-8")
        self.count = 0

    def write(self, obj: Any) -> None:
        assert self._fh is not None, "writer already closed"
        self._fh.write(dumps(obj) + "\n")
        self.count += 1

    def commit(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_records(path: str | Path, records: Iterable[Record | dict]) -> int:
    writer = AtomicWriter(path)
    try:
        for rec in records:
            writer.write(rec.to_json() if isinstance(rec, Record) else rec)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return writer.count


def shard_name(index: int, total: int, suffix: str = ".jsonl") -> str:
    return f"shard-{index:05d}-of-{total:05d}{suffix}"
