"""Shard j of n reads its own part of the corpus: the union over shards is every document exactly once, in order,
the same on every rerun; lines straddling a byte boundary and more shards than files are covered."""

from __future__ import annotations

import json
import random

import pytest

from mlift.data.corpus import SourceConfig, iter_documents
from mlift.data.shards import ByteRanges, file_owner, iter_lines
from mlift.records import BadLine


def _corpus(tmp_path, n_files: int, n_lines: int, seed: int = 0):
    rng = random.Random(seed)
    paths, texts = [], []
    for f in range(n_files):
        rows = []
        for i in range(n_lines):
            text = f"doc {f}-{i} " + "é" * rng.randint(0, 300)  # multi-byte characters: boundaries fall inside them
            rows.append(json.dumps({"id": f"{f}-{i}", "text": text}, ensure_ascii=False))
            texts.append(text)
        p = tmp_path / f"part-{f:02d}.jsonl"
        p.write_text("\n".join(rows) + ("\n" if f % 2 else ""), encoding="utf-8")  # odd files end without newline
        paths.append(p)
    return paths, texts


def _read(src, n):
    per_shard = [[r for r in iter_documents([src], "fr", (j, n))] for j in range(n)]
    return per_shard


@pytest.mark.parametrize("n_files,n", [(1, 1), (1, 7), (3, 8), (12, 5), (2, 40)])
def test_union_is_the_corpus_once_in_order(tmp_path, n_files, n):
    paths, texts = _corpus(tmp_path, n_files, 30)
    src = SourceConfig(kind="jsonl", path=str(tmp_path / "part-*.jsonl"), id_field="id")
    shards = _read(src, n)
    flat = [r.fields["text"] for s in shards for r in s]
    assert flat == texts  # exactly once, in file order (shard order = corpus order)
    assert [[r.id for r in s] for s in _read(src, n)] == [[r.id for r in s] for s in shards]  # rerun: same
    if n_files == 1 and n > 1:  # one big file: split by byte range, so several shards get documents
        assert sum(1 for s in shards if s) >= min(n, 5)


def test_lines_straddling_boundaries_read_once(tmp_path):
    p = tmp_path / "x.jsonl"
    lines = [b"a" * k + b"\n" for k in (1, 50, 2, 3, 97, 1, 1, 200, 5)]
    p.write_bytes(b"".join(lines))
    size = p.stat().st_size
    for n in range(1, size + 3):  # every boundary position, including ranges inside one line and empty ranges
        got = [(off, raw) for j in range(n) for _, off, raw in iter_lines(ByteRanges([p], j, n))]
        offsets = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
        assert got == list(zip(offsets, lines)), n


def test_each_shard_reads_only_its_part(tmp_path):
    paths, _ = _corpus(tmp_path, 1, 2000)
    size = paths[0].stat().st_size
    n = 8
    for j in range(n):
        r = ByteRanges(paths, j, n)
        read = sum(len(raw) for _, _, raw in iter_lines(r))
        assert read <= size / n + 1000  # its range plus at most the one line that straddles its end


def test_whole_file_units_one_owner_each(tmp_path):
    files = []
    for k in range(5):
        p = tmp_path / f"t{k}.txt"
        p.write_text(f"file {k}\n" * (k + 1), encoding="utf-8")
        files.append(p)
    for n in (1, 2, 3, 5, 9):
        owners = [file_owner(files, k, n) for k in range(5)]
        assert all(0 <= o < n for o in owners) and owners == sorted(owners)
    src = SourceConfig(kind="text", path=str(tmp_path / "t*.txt"), unit="file")
    docs = [r.fields["text"] for j in range(3) for r in iter_documents([src], "en", (j, 3))]
    assert docs == [p.read_text(encoding="utf-8") for p in files]


def test_bad_lines_found_by_byte_offset(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_bytes(b'{"text": "ok one"}\n{not json\n\n{"text": "caf\xe9"}\n{"body": 1}\n{"text": "ok two"}\n')
    got = [x for j in range(3) for x in iter_documents([SourceConfig(kind="jsonl", path=str(p))], "en", (j, 3))]
    bad = [x for x in got if isinstance(x, BadLine)]
    assert [b.line for b in bad] == [19, 30, 47] and "malformed JSON" in bad[0].reason and "undecodable" in bad[1].reason
    assert [x.fields["text"] for x in got if not isinstance(x, BadLine)] == ["ok one", "ok two"]
    assert [x.meta["source"]["doc_id"] for x in got if not isinstance(x, BadLine)] == ["d.jsonl@0", "d.jsonl@59"]


def test_limit_reads_a_prefix_dealt_round_robin(tmp_path):
    paths, texts = _corpus(tmp_path, 1, 50)
    src = SourceConfig(kind="jsonl", path=str(paths[0]), limit=10)
    shards = _read(src, 3)
    assert sorted((r.fields["text"] for s in shards for r in s), key=texts.index) == texts[:10]
    assert [len(s) for s in shards] == [4, 3, 3]


def test_hf_dataset_by_its_own_shards(tmp_path):
    d = tmp_path / "hf"
    d.mkdir()
    texts = []
    for f in range(4):
        rows = [{"text": f"hf {f}-{i}"} for i in range(7)]
        texts += [r["text"] for r in rows]
        (d / f"part-{f}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for streaming, n in ((True, 4), (True, 2), (True, 3), (False, 3), (True, 6)):
        src = SourceConfig(kind="hf", name=str(d), split="train", streaming=streaming)
        shards = _read(src, n)
        flat = [r.fields["text"] for s in shards for r in s]
        assert sorted(flat) == sorted(texts) and len(flat) == len(texts), (streaming, n)
        if n <= 4:
            assert flat == texts  # contiguous shards: corpus order
        assert [[r.id for r in s] for s in _read(src, n)] == [[r.id for r in s] for s in shards]
