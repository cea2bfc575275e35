"""What the baseline builders share: the English source loader (Alpaca JSON / JSONL / HF dataset, field mapping),
input sharding, and the chat record shape TRL trains on."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import Field

from mlift.recipe import RecipeError, Schema
from mlift.records import Record, read_records
from mlift.runner import ShardInput

DATASET_GLOB = "dataset/*/shard-*.jsonl"  # kept records of every language; quarantine/ and dropped/ are one level deeper


class PairSource(Schema):
    """An English instruction set: a local Alpaca-style JSON list, a JSONL file, or a HF dataset; `mapping` names the
    source columns for instruction / input / output (Dolly: instruction, context, response)."""

    path: str | None = Field(None, description="local .json (a list of objects) or .jsonl")
    hf: str | None = Field(None, description="HF dataset id, e.g. databricks/databricks-dolly-15k")
    hf_config: str | None = None
    split: str = "train"
    mapping: dict[str, str] = Field(default_factory=lambda: {"instruction": "instruction", "input": "input",
                                                               "output": "output"})
    id_field: str | None = Field(None, description="column with a stable id; default: <name>-<row index>")
    id_prefix: str | None = None
    lang: str = "eng_Latn"
    limit: int | None = Field(None, ge=1)


def load_pairs(src: PairSource) -> list[Record]:
    """Rows -> records with fields instruction/input/output (strings; a missing input is "")."""
    if (src.path is None) == (src.hf is None):
        raise RecipeError("source: give exactly one of path or hf")
    if src.path is not None:
        path = Path(src.path)
        if not path.is_file():
            raise RecipeError(f"source.path: file not found: {path}")
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            rows = json.loads(path.read_text(encoding="utf-8"))
        name = path.stem
    else:
        import datasets

        rows = datasets.load_dataset(src.hf, src.hf_config, split=src.split)
        name = src.hf.split("/")[-1]
    prefix = src.id_prefix or name
    out = []
    for i, row in enumerate(rows):
        if src.limit and len(out) >= src.limit:
            break
        fields = {k: str(row.get(col) or "") for k, col in src.mapping.items()}
        rid = str(row[src.id_field]) if src.id_field else f"{prefix}-{i}"
        out.append(Record(id=rid, lang=src.lang, fields=fields, meta={"source": name, "source_row": i}))
    return out


def record_rng(seed: int, rid: str) -> random.Random:
    """A random stream per record, from the seed and the record id: the same choice on any shard split and rerun."""
    return random.Random(int(hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()[:16], 16))


def chat(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def user_text(instruction: str, inp: str) -> str:
    return instruction if not inp.strip() else f"{instruction}\n\n{inp}"


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
