"""Stage 1 input: documents of one language from local files (text / JSONL / parquet) or an HF dataset (streaming).

Documents come out in a fixed order with stable ids; shard j of n takes documents i with i % n == j, so every shard
streams the sources itself (no materialized copy of a large corpus) and a rerun sees exactly the same documents.
Unreadable input (undecodable bytes, malformed JSON, a row without text) comes back as BadLine -> quarantine.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from pathlib import Path

from mlift.generate.config import SourceConfig
from mlift.languages import Language, get_language
from mlift.records import BadLine, Record, dumps, read_jsonl
from mlift.runner import ShardInput


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
    raw = path.read_bytes()
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


def iter_source(src: SourceConfig, lang: Language) -> Iterator[tuple[str, str | BadLine]]:
    """(doc id, text or BadLine) in a fixed order."""
    if src.kind == "text":
        for path in _files(fill(src.path, lang)):
            yield from _text_docs(path, src.unit)
    elif src.kind == "jsonl":
        for path in _files(fill(src.path, lang)):
            for lineno, obj in read_jsonl(path):
                if isinstance(obj, BadLine):
                    yield f"{path.name}:{lineno}", obj
                else:
                    yield _row_doc(obj, src, f"{path.name}:{lineno}", (str(path), lineno))
    elif src.kind == "parquet":
        import pyarrow.parquet as pq

        for path in _files(fill(src.path, lang)):
            row = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                for obj in batch.to_pylist():
                    row += 1
                    yield _row_doc(obj, src, f"{path.name}:{row}", (str(path), row))
    else:
        from datasets import load_dataset

        ds = load_dataset(fill(src.name, lang), fill(src.config, lang), split=src.split, streaming=src.streaming)
        for row, obj in enumerate(ds):
            yield _row_doc(obj, src, f"{src.name}:{row}", (str(src.name), row))


def iter_documents(sources: list[SourceConfig], lang_code: str) -> Iterator[Record | BadLine]:
    lang = get_language(lang_code)
    for s, src in enumerate(sources):
        if src.langs and lang.flores not in {get_language(x).flores for x in src.langs}:
            continue
        if not src.required and src.kind != "hf" and not glob.glob(fill(src.path, lang) or ""):
            continue
        for count, (doc_id, doc) in enumerate(iter_source(src, lang)):
            if src.limit is not None and count >= src.limit:
                break
            if isinstance(doc, BadLine):
                yield doc
                continue
            yield Record(id=f"{lang.short}-s{s}-{doc_id}", lang=lang.flores, fields={"text": doc},
                         meta={"source": {"index": s, "kind": src.kind, "name": src.name or fill(src.path, lang),
                                          "doc_id": doc_id}})


def document_shards(sources: list[SourceConfig], lang_code: str, total: int) -> list[ShardInput]:
    def reader(j: int) -> Callable[[], Iterator[Record | BadLine]]:
        def read() -> Iterator[Record | BadLine]:
            for i, item in enumerate(iter_documents(sources, lang_code)):
                if i % total == j:
                    yield item
        return read

    return [ShardInput(j, total, reader(j)) for j in range(total)]

