"""Training data for SFT: load mlift datasets (dirs of `shard-*.jsonl`), local json/jsonl/parquet files and HF hub
datasets into one conversational `messages` column, and mix them by weight, deterministically from the seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from mlift.recipe import Schema


class DatasetSource(Schema):
    path: str = Field(description="mlift dataset dir (shard-*.jsonl), a .json/.jsonl/.parquet file, or an HF hub id")
    weight: float = Field(1.0, gt=0, description="example multiplier: 0.5 keeps a seeded half, 2 repeats twice")
    split: str = "train"
    name: str | None = Field(None, description="HF dataset config name")
    revision: str | None = None
    langs: list[str] | None = Field(None, description="keep only records whose `lang` is listed")
    max_samples: int | None = Field(None, ge=1, description="cap before weighting")


def source_kind(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        return "mlift" if any(p.glob("shard-*.jsonl")) else "dir"
    if p.suffix in (".json", ".jsonl"):
        return "json"
    if p.suffix == ".parquet":
        return "parquet"
    return "hub"


def to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """One row in any supported layout -> chat messages."""
    if row.get("messages"):
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list):
            return [*prompt, *completion]
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if "instruction" in row and "output" in row:  # alpaca / Bactrian-X
        from mlift.baselines.common import chat, user_text

        return chat(user_text(row["instruction"], row.get("input") or ""), row["output"])
    raise ValueError(f"cannot read a conversation from a row with keys {sorted(row)} "
                     "(expected messages, prompt/completion, or instruction/output)")


def _file_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def load_source(src: DatasetSource) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows as {"messages", "lang"} plus provenance (kind, file hash or hub fingerprint)."""
    kind = source_kind(src.path)
    info: dict[str, Any] = {"path": src.path, "kind": kind, "weight": src.weight}
    if kind == "mlift":
        from mlift.records import BadLine, read_records

        files = sorted(Path(src.path).glob("shard-*.jsonl"))
        rows, bad = [], 0
        for f in files:
            for rec in read_records(f):
                if isinstance(rec, BadLine):
                    bad += 1
                    continue
                rows.append({"messages": to_messages(rec.fields), "lang": rec.lang})
        info.update(files=len(files), hash=_file_hash(files), bad_lines=bad)
    elif kind in ("json", "parquet"):
        import datasets

        ds = datasets.load_dataset(kind, data_files=src.path, split="train")
        rows = [{"messages": to_messages(r), "lang": r.get("lang") or ""} for r in ds]
        info.update(hash=_file_hash([Path(src.path)]))
    elif kind == "hub":
        import datasets

        ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=src.revision)
        rows = [{"messages": to_messages(r), "lang": r.get("lang") or ""} for r in ds]
        info.update(hash=ds._fingerprint, split=src.split, name=src.name, revision=src.revision)
    else:
        raise ValueError(f"data.datasets: {src.path}: a directory without shard-*.jsonl files")
    if src.langs:
        rows = [r for r in rows if r["lang"] in src.langs]
    if src.max_samples:
        rows = rows[: src.max_samples]
    info["examples"] = len(rows)
    return rows, info


def weighted(rows: list[dict[str, Any]], weight: float, rng) -> list[dict[str, Any]]:
    """Repeat whole copies for the integer part, a seeded sample for the fraction."""
    whole, frac = int(weight), weight - int(weight)
    out = rows * whole
    k = round(frac * len(rows))
    if k:
        out += [rows[i] for i in sorted(rng.sample(range(len(rows)), k))]
    return out


def build_mixture(sources: list[DatasetSource], seed: int, shuffle: bool = True):
    """The mixed training set (a `datasets.Dataset` with `messages` and `lang`) and per-source provenance."""
    import random

    import datasets

    rng = random.Random(seed)
    mixed: list[dict[str, Any]] = []
    infos = []
    for src in sources:
        rows, info = load_source(src)
        if not rows:
            raise ValueError(f"data.datasets: {src.path}: no examples (after langs/max_samples filters)")
        picked = weighted(rows, src.weight, rng)
        info["mixed_examples"] = len(picked)
        mixed.extend(picked)
        infos.append(info)
    if shuffle:
        rng.shuffle(mixed)
    blob = json.dumps([r["messages"] for r in mixed], ensure_ascii=False, sort_keys=True).encode()
    mix_info = {"sources": infos, "examples": len(mixed), "hash": hashlib.sha256(blob).hexdigest()[:16]}
    return datasets.Dataset.from_list(mixed), mix_info
