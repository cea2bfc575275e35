"""Training data for SFT: the recipe's sources (mlift.data.conversations: mlift datasets, chat / Alpaca JSON(L), parquet, HF
hub ids) mixed by weight into one `messages` + `lang` Arrow dataset, deterministically from the seed.

The mixture is built once and cached on disk (memory-mapped Arrow), keyed by a digest of the sources (their
files' path, size and mtime, or the hub settings) and the data section + seed. Under `accelerate launch` the job's
global main process builds it (train.py wraps this in `main_process_first(local=False)`: with the per-node default,
the first process of every node built the same key at once in a shared cache) and the other ranks load the cache.
Each builder works in its own `<key>.building-<host>-<pid>` folder and renames it into place, so two jobs sharing a
cache (or a network filesystem) never touch each other's half-built files; the first rename wins, the other's copy
is dropped; because the
dataset is file-backed, TRL's tokenization (`dataset_num_proc`, run main-process-first by TRL) is cached next to it
and loaded by the other ranks too. Malformed rows go to `<cache>/quarantine.jsonl` with file:line, counted per source.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from mlift.data.conversations import DataSource, iter_conversations, source_digest, source_files
from mlift.records import BadLine, dumps

CACHE_VERSION = 1  # bump when the mixture's layout or rule changes


class DatasetSource(DataSource):
    weight: float = Field(1.0, gt=0, description="example multiplier: 0.5 keeps a seeded half, 2 repeats twice")


def features():
    import datasets

    msg = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    return datasets.Features({"messages": datasets.List(msg), "lang": datasets.Value("string")})


def _rows(src_json: str, quarantine: str):
    """from_generator's generator: the source's rows as {messages, lang}; bad lines appended to `quarantine`."""
    src = DatasetSource.model_validate_json(src_json)
    with open(quarantine, "a", encoding="utf-8") as bad:
        for item in iter_conversations(src):
            if isinstance(item, BadLine):
                bad.write(dumps({**item.to_json(), "data_source": src.path, "where": f"{item.source}:{item.line}"}) + "\n")
                continue
            yield {"messages": item.fields["messages"], "lang": item.lang}


def cache_root() -> Path:
    import datasets

    return Path(os.environ.get("MLIFT_DATA_CACHE") or Path(datasets.config.HF_DATASETS_CACHE) / "mlift_mixtures")


def mixture_key(sources: list[DatasetSource], seed: int, shuffle: bool) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "seed": seed, "shuffle": shuffle,
                       "sources": [[s.model_dump(mode="json"), source_digest(s)] for s in sources]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def weighted_indices(n: int, weight: float, rng: random.Random) -> list[int]:
    """Repeat whole copies for the integer part, a seeded sample for the fraction."""
    whole, frac = int(weight), weight - int(weight)
    out = list(range(n)) * whole
    k = round(frac * n)
    if k:
        out += sorted(rng.sample(range(n), k))
    return out


def build_mixture(sources: list[DatasetSource], seed: int, shuffle: bool = True):
    """The mixed training set (a file-backed `datasets.Dataset` with `messages` and `lang`) and its provenance."""
    import datasets

    key = mixture_key(sources, seed, shuffle)
    home = cache_root() / key
    if (home / "info.json").is_file():
        info = json.loads((home / "info.json").read_text(encoding="utf-8"))
        return datasets.load_from_disk(str(home / "mixture")), {**info, "cache": "hit"}
    _drop_stale_builds(home)
    work = home.with_name(f"{key}.building-{socket.gethostname()}-{os.getpid()}")  # private: no other builder's
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    quarantine = work / "quarantine.jsonl"
    rng = random.Random(seed)
    parts, infos = [], []
    for k, src in enumerate(sources):
        files = source_files(src)
        before = _count_lines(quarantine)
        try:
            ds = datasets.Dataset.from_generator(_rows, features=features(), cache_dir=str(work / f"source-{k}"),
                                                 gen_kwargs={"src_json": src.model_dump_json(),
                                                             "quarantine": str(quarantine)})
        except ValueError as exc:  # datasets refuses an empty generator: "... corresponds to no data!"
            if "no data" not in str(exc):
                raise
            ds = []
        info: dict[str, Any] = {"path": src.path, "kind": "hub" if files is None else "files", "weight": src.weight,
                                "hash": source_digest(src), "examples": len(ds),
                                "bad_lines": _count_lines(quarantine) - before}
        if files is not None:
            info["files"] = len(files)
        if not len(ds):  # a RecipeError (exit 2): the wrong file or format, said before any model loads
            from mlift.recipe import RecipeError

            raise RecipeError(f"data.datasets: {src.path}: no examples (after langs/limit filters; "
                              f"{info['bad_lines']} malformed rows, see {quarantine})")
        idx = weighted_indices(len(ds), src.weight, rng)
        info["mixed_examples"] = len(idx)
        parts.append(ds.select(idx))
        infos.append(info)
    mixed = datasets.concatenate_datasets(parts)
    if shuffle:
        order = list(range(len(mixed)))
        rng.shuffle(order)
        mixed = mixed.select(order)
    mixed.save_to_disk(str(work / "mixture"))  # flattened: one contiguous Arrow table, read back memory-mapped
    for k in range(len(sources)):
        shutil.rmtree(work / f"source-{k}", ignore_errors=True)
    mix_info = {"sources": infos, "examples": len(mixed), "hash": key, "cache_dir": str(home),
                "bad_lines": sum(i["bad_lines"] for i in infos),
                "quarantine": str(home / "quarantine.jsonl") if quarantine.exists() else None}
    (work / "info.json").write_text(json.dumps(mix_info, indent=1), encoding="utf-8")
    try:
        work.rename(home)  # complete or absent: a killed build is redone, never half-read
    except OSError:  # another job renamed its identical build into place first: use that one
        if not (home / "info.json").is_file():
            raise
        shutil.rmtree(work, ignore_errors=True)
        return datasets.load_from_disk(str(home / "mixture")), {**mix_info, "cache": "hit"}
    print(f"mlift train: built the training mixture {key} ({len(mixed)} examples) on {socket.gethostname()} "
          f"rank {os.environ.get('RANK', '0')}", file=sys.stderr, flush=True)
    return datasets.load_from_disk(str(home / "mixture")), {**mix_info, "cache": "built"}


def _drop_stale_builds(home: Path, max_age_s: float = 86400) -> None:
    """Remove build folders of this key left by killed builders (a day old: no live build takes that long)."""
    import time

    for old in home.parent.glob(home.name + ".building-*") if home.parent.is_dir() else []:
        try:
            if time.time() - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
