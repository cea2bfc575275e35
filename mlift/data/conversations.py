"""One way to name a data source, and one reader, for training mixtures (`mlift train`), `mlift mix` and the baselines.

`path` is a file, a directory, a glob or an HF hub id. Files: JSONL (mlift chat shards, messages rows, Alpaca rows),
a JSON array (Alpaca), parquet. A directory: an mlift run (`dataset/*/shard-*.jsonl`), a dataset dir (`shard-*.jsonl`),
or its *.jsonl / *.json / *.parquet files. Each row is read as chat `messages`, `prompt`/`completion`, or Alpaca
instruction/input/output (names mapped by `columns`), whichever it holds (`format: auto`) or the one named.
Malformed rows are never skipped silently: each comes back as a BadLine (file, line, reason) for quarantine, counted.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from mlift.fingerprint import Reads
from mlift.recipe import RecipeError, Schema
from mlift.records import BadLine, Record, dumps, read_jsonl

COLUMN_KEYS = ("instruction", "input", "output", "messages", "prompt", "completion", "id", "lang")
ALPACA = {"instruction": "instruction", "input": "input", "output": "output"}


class DataSource(Schema):
    path: Annotated[str, Reads(files="mlift.data.conversations:local_files")] = Field(
        description="a file (.jsonl/.json/.parquet), a directory, a glob, or an HF hub id")
    format: Literal["auto", "chat", "prompt_completion", "alpaca"] = Field(
        "auto", description="auto: per row, messages, else prompt/completion, else instruction/output")
    columns: dict[str, str] = Field(default_factory=dict, description="our name -> the source's column, e.g. Dolly: "
                                    "{input: context, output: response}; keys: " + ", ".join(COLUMN_KEYS))
    config: str | None = Field(None, description="HF dataset config name")
    split: str = "train"
    revision: str | None = None
    lang: str | None = Field(None, description="language of rows that carry none")
    langs: list[str] | None = Field(None, description="keep only rows in these languages")
    limit: int | None = Field(None, ge=1, description="at most this many rows (after the langs filter)")
    id_prefix: str | None = Field(None, description="ids of rows without one: <prefix>-<row number>; default: the name")

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(value) - set(COLUMN_KEYS))
        if bad:
            raise ValueError(f"unknown column key(s) {bad}; known: {list(COLUMN_KEYS)}")
        return value

    def column(self, key: str) -> str:
        return self.columns.get(key, key)

    @property
    def name(self) -> str:
        p = self.path.rstrip("/")
        return Path(p).stem if Path(p).suffix else p.split("/")[-1]


def source_files(src: DataSource) -> list[Path] | None:
    """The local files of a source, or None for an HF hub id. A local-looking path that matches nothing is an error."""
    p = Path(src.path)
    if p.is_file():
        return [p]
    if p.is_dir():
        for pattern in ("dataset/*/shard-*.jsonl", "shard-*.jsonl", "*.jsonl", "*.json", "*.parquet"):
            files = sorted(p.glob(pattern))
            if files:
                return files
        raise RecipeError(f"data source {src.path}: a directory without shard-*.jsonl / *.jsonl / *.json / *.parquet")
    if any(ch in src.path for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(src.path))
        if not files:
            raise RecipeError(f"data source {src.path}: the glob matches no files")
        return files
    if src.path.startswith((".", "/", "~")) or p.suffix in (".json", ".jsonl", ".parquet") or src.path.count("/") != 1:
        raise RecipeError(f"data source {src.path}: no such file or directory (nor an HF hub id owner/name)")
    return None


def local_files(path: str) -> list[Path] | None:
    """The files a source path reads (for the recipe's fingerprint); None for a hub id or a path not there."""
    try:
        return source_files(DataSource(path=path))
    except RecipeError:
        return None


def source_digest(src: DataSource) -> str:
    """Changes when the source's files (path, size, mtime) or its settings change; hub ids: the settings."""
    h = hashlib.sha256(src.model_dump_json().encode())
    for f in source_files(src) or []:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _rows(src: DataSource) -> Iterator[tuple[str, int, Any]]:
    """(where, line or row number, object or BadLine) for every row of every file, in order."""
    files = source_files(src)
    if files is None:
        from mlift.data.hub import load_config

        ds, _ = load_config(src.path, src.config, src.split, src.revision)  # a script dataset: its parquet export
        for i, row in enumerate(ds):
            yield src.path, i + 1, row
        return
    for f in files:
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            n = 0
            for batch in pq.ParquetFile(f).iter_batches():
                for row in batch.to_pylist():
                    n += 1
                    yield str(f), n, row
        elif f.suffix == ".json":
            text = f.read_text(encoding="utf-8-sig")
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                if "Extra data" not in str(exc):  # one JSON value per line: read it as JSONL below
                    raise RecipeError(f"{f}: not valid JSON ({exc})") from None
                yield from ((str(f), n, obj) for n, obj in read_jsonl(f))
                continue
            if not isinstance(data, list):
                raise RecipeError(f"{f}: expected a JSON array of rows, got {type(data).__name__}")
            for i, row in enumerate(data):
                yield str(f), i + 1, row
        else:
            yield from ((str(f), n, obj) for n, obj in read_jsonl(f))


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list")
    out = []
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"a message must be {{role: str, content: str}}, got {str(m)[:80]}")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
        raise ValueError("the last message must be a non-empty assistant reply")
    return out


def row_to_messages(row: dict[str, Any], src: DataSource) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(messages, Alpaca fields or {}): the one converter from any supported row layout to chat."""
    fmt = src.format
    if fmt == "auto":
        if src.column("messages") in row and row[src.column("messages")] is not None:
            fmt = "chat"
        elif src.column("prompt") in row and src.column("completion") in row:
            fmt = "prompt_completion"
        elif src.column("instruction") in row and src.column("output") in row:
            fmt = "alpaca"
        else:
            raise ValueError(f"row has none of messages, prompt/completion, {src.column('instruction')}/"
                             f"{src.column('output')} (keys {sorted(row)[:12]})")
    if fmt == "chat":
        return _messages(row.get(src.column("messages"))), {}
    if fmt == "prompt_completion":
        prompt, completion = row.get(src.column("prompt")), row.get(src.column("completion"))
        if isinstance(prompt, list):
            return _messages([*prompt, *(completion or [])]), {}
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ValueError("prompt and completion must be strings or message lists")
        return _messages(chat(prompt, completion)), {}
    fields = {}
    for key in ALPACA:
        value = row.get(src.column(key))
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{src.column(key)} must be a string, got {type(value).__name__}")
        fields[key] = value or ""
    if not fields["instruction"].strip() or not fields["output"].strip():
        raise ValueError(f"empty {src.column('instruction')} or {src.column('output')}")
    return chat(user_text(fields["instruction"], fields["input"]), fields["output"]), fields


def iter_conversations(src: DataSource) -> Iterator[Record | BadLine]:
    """Every row as a Record (fields: messages, plus instruction/input/output for Alpaca rows; lang "" when neither
    the row nor the source gives one), or a BadLine saying where and why. `langs` and `limit` are applied here."""
    from mlift.languages import get_language

    default_lang = get_language(src.lang).flores if src.lang else ""
    keep = {get_language(x).flores for x in src.langs} if src.langs else None
    prefix = src.id_prefix or src.name
    n = 0
    for where, line, row in _rows(src):
        if isinstance(row, BadLine):
            yield row
            continue
        try:
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            messages, fields = row_to_messages(row, src)
            lang = row.get(src.column("lang")) or default_lang
            lang = get_language(lang).flores if lang else ""
        except ValueError as exc:
            yield BadLine(where, line, dumps(row)[:10_000], str(exc))
            continue
        if keep is not None and lang not in keep:
            continue
        rid = row.get(src.column("id"))
        rid = str(rid) if rid not in (None, "") else f"{prefix}-{line - 1}"
        meta = dict(row["meta"]) if isinstance(row.get("meta"), dict) else {}
        meta.setdefault("source_id", rid)
        meta.setdefault("source", src.name)
        meta["source_row"] = f"{where}:{line}"
        yield Record(rid, lang, {"messages": messages, **fields}, meta)
        n += 1
        if src.limit and n >= src.limit:
            return


class SourceRead:
    """A source read into memory (mix, baselines): its records, its bad lines, and what went into the manifest."""

    def __init__(self, src: DataSource):
        self.records: list[Record] = []
        self.bad: list[BadLine] = []
        for item in iter_conversations(src):
            (self.bad if isinstance(item, BadLine) else self.records).append(item)
        if not self.records:  # the wrong file or format: an empty mixture or a "0/0 contaminated" would follow
            first = "; ".join(f"{b.source}:{b.line}: {b.reason[:160]}" for b in self.bad[:3])
            raise RecipeError(f"data source {src.path}: no readable record"
                              + (f" ({len(self.bad)} unreadable; first: {first})" if self.bad else " (empty)"))
        self.info = {"path": src.path, "fingerprint": source_digest(src), "records": len(self.records),
                     "bad_lines": len(self.bad)}


def write_quarantine(path: Path, bad: list[BadLine], source: str) -> None:
    """Append bad lines (file:line, reason, raw) to a JSONL quarantine file."""
    if not bad:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for b in bad:
            fh.write(dumps({**b.to_json(), "data_source": source, "where": f"{b.source}:{b.line}"}) + "\n")


def chat(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def user_text(instruction: str, inp: str) -> str:
    return instruction if not inp.strip() else f"{instruction}\n\n{inp}"
