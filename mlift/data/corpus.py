"""Stage 1 input: documents of one language from local files (text / JSONL / parquet) or an HF dataset (streaming).

Shard j of n reads about 1/n of the input, once (mlift.data.shards): JSONL and line-unit text files by byte
range over the concatenated files (a line belongs to the shard where it starts; ids are file@byte-offset, the same for
any n), other local files whole by file, HF datasets by the dataset's own shards. A source with `limit` reads only its
first `limit` documents, dealt round-robin. Every rerun sees the same documents in the same order, and the union over
shards is the corpus exactly once. Unreadable input (undecodable bytes, malformed JSON, a row without text) comes back
as BadLine -> quarantine.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from mlift.data.shards import ByteRanges, file_owner, hf_shard, iter_lines
from mlift.fingerprint import InputPath
from mlift.languages import Language, get_language
from mlift.recipe import Schema
from mlift.records import BadLine, Record, dumps
from mlift.runner.stage import ShardInput
from mlift.textio import strip_bom


class SourceConfig(Schema):
    """One corpus. `path`/`name`/`config` may contain {flores} {iso1} {iso3} {xlsum} {short}, filled per language."""

    kind: Literal["text", "jsonl", "parquet", "hf"]
    path: InputPath | None = Field(None, description="file or glob (text/jsonl/parquet)")
    name: str | None = Field(None, description="HF dataset name, e.g. uonlp/CulturaX, HuggingFaceFW/fineweb-2, wikimedia/wikipedia")
    config: str | None = Field(None, description="HF config, e.g. {iso1} (CulturaX), {flores} (FineWeb-2), 20231101.{iso1}")
    split: str = "train"
    streaming: bool = True
    text_field: str = "text"
    id_field: str | None = Field(None, description="field holding a document id; default: <source>-<index>")
    unit: Literal["file", "paragraph", "line"] = Field("file", description="text files: what counts as one document")
    limit: int | None = Field(None, ge=1, description="at most N documents from this source (per language)")
    langs: list[str] | None = Field(None, description="only for these languages (default: all)")
    required: bool = Field(True, description="false: a language without this file/config just skips the source")


def fill(template: str | None, lang: Language) -> str | None:
    if template is None:
        return None
    return template.format(flores=lang.flores, iso1=lang.iso1 or lang.flores, iso3=lang.iso3,
                           xlsum=lang.xlsum or lang.flores, short=lang.short)


def _files(pattern: str) -> list[Path]:
    found = sorted(Path(p) for p in glob.glob(pattern))
    if not found:
        raise FileNotFoundError(f"source file not found: {pattern}")
    return found


def _text_docs(path: Path, unit: str) -> Iterator[tuple[str, str | BadLine]]:
    raw = strip_bom(path.read_bytes(), first=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Keep the decodable lines; each line with bad bytes is reported (and quarantined), not silently replaced.
        for n, line in enumerate(raw.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                yield f"{path.name}:{n}", BadLine(str(path), n, line.decode("utf-8", "replace"), f"undecodable bytes: {exc.reason}")
        text = b"\n".join(x for x in raw.split(b"\n") if _decodes(x)).decode("utf-8")
    if unit == "file":
        yield path.name, text
    elif unit == "line":
        for n, line in enumerate(text.split("\n"), start=1):
            if line.strip():  # blank lines separate documents; they are not documents
                yield f"{path.name}:{n}", line
    else:
        for n, para in enumerate(text.replace("\r\n", "\n").split("\n\n"), start=1):
            if para.strip():
                yield f"{path.name}:p{n}", para


def _decodes(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _row_doc(obj: dict, src: SourceConfig, default_id: str, where: tuple[str, int]) -> tuple[str, str | BadLine]:
    if not isinstance(obj, dict):
        return default_id, BadLine(where[0], where[1], dumps(obj), "row is not an object")
    text = obj.get(src.text_field)
    doc_id = str(obj.get(src.id_field)) if src.id_field and obj.get(src.id_field) is not None else default_id
    if not isinstance(text, str):
        return doc_id, BadLine(where[0], where[1], dumps(obj)[:2000], f"no string field {src.text_field!r}")
    return doc_id, text


def _line_docs(src: SourceConfig, path: Path, offset: int, raw: bytes) -> tuple[str, str | BadLine]:
    where = f"{path.name}@{offset}"
    raw = strip_bom(raw, first=offset == 0)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return where, BadLine(str(path), offset, raw.decode("utf-8", "replace"), f"byte {offset}: undecodable bytes: {exc.reason}")
    if src.kind == "text":
        return where, text.rstrip("\r\n")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return where, BadLine(str(path), offset, text, f"byte {offset}: malformed JSON: {exc}")
    return _row_doc(obj, src, where, (str(path), offset))


def check_local_files(sources: list[SourceConfig], langs: list[Language]) -> None:
    """Before any work: every local text/JSONL source file exists for every language and is not binary (a mistyped
    path or {iso3} pattern, an archive given as a corpus); FileNotFoundError / TextFileError naming the file."""
    from mlift.textio import check_not_binary

    for src in sources:
        if src.kind in ("text", "jsonl"):
            for lang in langs:
                try:
                    files = _files(fill(src.path, lang))
                except FileNotFoundError:
                    if src.required:
                        raise
                    continue  # an optional source: a language without its file is allowed
                for path in files:
                    check_not_binary(path)


def _by_lines(src: SourceConfig) -> bool:
    return src.kind == "jsonl" or (src.kind == "text" and src.unit == "line")


def iter_source_documents(src: SourceConfig, lang: Language, shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[str, str | BadLine]]:
    """(doc id, text or BadLine) of shard (j, n) of the source, in a fixed order; only that part is read."""
    j, n = shard
    if src.kind == "hf":
        from mlift.data.hub import load_config

        ds, _ = load_config(fill(src.name, lang), fill(src.config, lang), src.split, streaming=src.streaming)
        part, first = hf_shard(ds, j, n)
        for row, obj in enumerate(part):
            key = f"{src.name}:{first + row}" if first is not None else f"{src.name}:{n}.{j}:{row}"
            yield _row_doc(obj, src, key, (str(src.name), row))
        return
    files = _files(fill(src.path, lang))
    if _by_lines(src):
        for path, offset, raw in iter_lines(ByteRanges(files, j, n)):
            if raw.strip():  # blank lines separate documents; they are not documents
                yield _line_docs(src, path, offset, raw)
        return
    for k, path in enumerate(files):
        if file_owner(files, k, n) != j:
            continue
        if src.kind == "text":
            yield from _text_docs(path, src.unit)
        else:
            import pyarrow.parquet as pq

            row = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                for obj in batch.to_pylist():
                    row += 1
                    yield _row_doc(obj, src, f"{path.name}:{row}", (str(path), row))


def iter_documents(sources: list[SourceConfig], lang_code: str, shard: tuple[int, int] = (0, 1)) -> Iterator[Record | BadLine]:
    """Documents of shard (j, n), source by source. A source with `limit` reads its first `limit` documents whole
    (in every shard, a bounded prefix) and deals them round-robin; the others are read by part."""
    lang = get_language(lang_code)
    j, n = shard
    for s, src in enumerate(sources):
        if src.langs and lang.flores not in {get_language(x).flores for x in src.langs}:
            continue
        if not src.required and src.kind != "hf" and not glob.glob(fill(src.path, lang) or ""):
            continue
        docs = iter_source_documents(src, lang) if src.limit is not None else iter_source_documents(src, lang, shard)
        for count, (doc_id, doc) in enumerate(docs):
            if src.limit is not None:
                if count >= src.limit:
                    break
                if count % n != j:
                    continue
            if isinstance(doc, BadLine):
                yield doc
                continue
            yield Record(id=f"{lang.short}-s{s}-{doc_id}", lang=lang.flores, fields={"text": doc},
                         meta={"source": {"index": s, "kind": src.kind, "name": src.name or fill(src.path, lang),
                                          "doc_id": doc_id}})


def document_shards(sources: list[SourceConfig], lang_code: str, total: int) -> list[ShardInput]:
    def reader(j: int) -> Callable[[], Iterator[Record | BadLine]]:
        return lambda: iter_documents(sources, lang_code, (j, total))

    return [ShardInput(j, total, reader(j)) for j in range(total)]
