"""Global steps (cross-shard dedup, diversity selection) on top of the map-only runner.

A global step needs every shard of its input stage done. It reads them all in shard order, decides which record ids
to drop (deterministically, seeded), writes that decision atomically as `<step>/_plan.json`, and then runs as an
ordinary runner stage that applies the plan shard by shard, so it gets the same markers, counts, resume and sharded
output as every map stage. A kill before the plan is written recomputes it identically; after, the plan is reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from mlift.records import Record, read_records, shard_name, write_json_atomic
from mlift.runner.stage import Outcome


class NotReady(RuntimeError):
    """A global step was asked to run before all shards of its input were done (e.g. another Slurm task is still busy)."""


def missing_shards(stage_dir: Path, total: int) -> list[int]:
    return [j for j in range(total) if not (stage_dir / "_done" / shard_name(j, total, ".json")).exists()]


def iter_all(stage_dir: Path, total: int) -> Iterator[Record]:
    """The kept records of every shard, shard 0 first (unreadable lines were already quarantined by the stage)."""
    for j in range(total):
        path = stage_dir / shard_name(j, total)
        if path.exists():
            for rec in read_records(path):
                if isinstance(rec, Record):
                    yield rec


def ensure_plan(step_dir: Path, input_dir: Path, total: int, compute: Callable[[], dict]) -> dict:
    """The step's plan {"drop": {id: [reason, detail]}, "info": {...}}, computed once when all inputs are done."""
    path = step_dir / "_plan.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    missing = missing_shards(input_dir, total)
    if missing:
        raise NotReady(f"{step_dir.name}: needs all shards of {input_dir.name}; missing {missing[:8]}")
    plan = compute()
    write_json_atomic(path, plan)
    return plan


class PlanStage:
    """Applies a plan: drops the planned ids with their reasons, keeps the rest (one outcome per record)."""

    one_to_one = True

    def __init__(self, name: str, plan: dict, batch_size: int = 256):
        self.name = name
        self.drop = plan.get("drop", {})
        self.batch_size = batch_size

    def process(self, batch: list[Record]) -> list[Outcome]:
        out = []
        for rec in batch:
            if rec.id in self.drop:
                reason, detail = self.drop[rec.id]
                out.append(Outcome.drop(rec, reason, detail))
            else:
                out.append(Outcome.keep(rec))
        return out
