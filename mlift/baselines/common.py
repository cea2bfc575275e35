"""What the baseline builders share: the English source loader (mlift.data.conversations: Alpaca JSON / JSONL / HF dataset),
input sharding, and the chat record shape TRL trains on."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from mlift.data.conversations import DataSource, iter_conversations
from mlift.recipe import RecipeError
from mlift.records import BadLine, Record, read_records
from mlift.runner.stage import ShardInput

DATASET_GLOB = "dataset/*/shard-*.jsonl"  # kept records of every language; quarantine/ and dropped/ are one level deeper


class PairSource(DataSource):
    """The English instruction set a baseline translates: mlift's one data-source schema (mlift.data.conversations), English by
    default. Dolly: `columns: {input: context, output: response}`."""

    lang: str | None = "eng_Latn"


def load_pairs(src: DataSource) -> tuple[list[Record], list[BadLine]]:
    """Rows -> records with fields instruction/input/output (a single-turn chat row gives its user and assistant
    turns), and the rows that could not be read (file:line, reason) for the quarantine."""
    out, bad = [], []
    for item in iter_conversations(src):
        if isinstance(item, BadLine):
            bad.append(item)
            continue
        fields = {k: item.fields[k] for k in ("instruction", "input", "output") if k in item.fields}
        if not fields:
            turns = [m for m in item["messages"] if m["role"] != "system"]
            if len(turns) != 2 or turns[0]["role"] != "user":
                where, line = item.meta["source_row"].rsplit(":", 1)
                bad.append(BadLine(where, int(line), str(item["messages"])[:10_000],
                                   "a baseline needs single-turn rows (one user, one assistant message)"))
                continue
            fields = {"instruction": turns[0]["content"], "input": "", "output": turns[1]["content"]}
        out.append(Record(item.id, item.lang or "eng_Latn", fields, item.meta))
    if not out:
        raise RecipeError(f"source {src.path}: no usable rows ({len(bad)} malformed)")
    return out, bad


def record_rng(seed: int, rid: str) -> random.Random:
    """A random stream per record, from the seed and the record id: the same choice on any shard split and rerun."""
    return random.Random(int(hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()[:16], 16))


def memory_inputs(records: list[Record], n: int) -> list[ShardInput]:
    """Shard inputs over an in-memory list (contiguous slices), for stages whose input is computed, not read."""
    per = -(-len(records) // n) if records else 0

    def reader(chunk: list[Record]) -> Callable[[], Iterator[Record]]:
        return lambda: iter([Record(r.id, r.lang, dict(r.fields), dict(r.meta)) for r in chunk])

    return [ShardInput(j, n, reader(records[j * per:(j + 1) * per])) for j in range(n)]


def read_stage(run_dir: Path, stage: str) -> list[Record]:
    """All kept records of a stage (every shard), in shard order."""
    recs = []
    for path in sorted((run_dir / stage).glob("shard-*.jsonl")):
        recs += [r for r in read_records(path) if isinstance(r, Record)]
    return recs
