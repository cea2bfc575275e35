"""Run a stage over shards: atomic outputs, a completion marker per shard, resume, quarantine, counts, progress.

Layout of one stage of a run (datatrove-style: a shard is done exactly when its marker exists):

    <run_dir>/<stage>/shard-00003-of-00008.jsonl        kept records (load with datasets: data_files=<stage>/shard-*.jsonl)
    <run_dir>/<stage>/dropped/shard-00003-of-00008.jsonl  records dropped by design, each with its reason
    <run_dir>/<stage>/quarantine/shard-00003-of-00008.jsonl records that failed, each with its reason
    <run_dir>/<stage>/_done/shard-00003-of-00008.json   the marker: counts, reasons, seconds, token usage

A shard that was interrupted (even by kill -9) has no marker; a rerun redoes it from scratch, so there are no
duplicates and nothing is lost. The LLM request cache makes the redo cheap: finished generations are not paid twice.
A shard whose records failed for a transient reason (server down, timeout) gets no marker either, but a
`_pending/<shard>.json` that counts attempts across reruns (see mlift/runner/pending.py). A batch that makes the stage raise
is split in halves down to the record that raises, which goes the same way; the rest of the shard goes on.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

from mlift.llm.base import is_waiting
from mlift.records import BadLine, Record, read_records, shard_name, write_json_atomic
from mlift.runner.pending import DEFAULT_MAX_ATTEMPTS, classify, pending_count
from mlift.runner.rundir import guard_run_dir, holds_data, write_input_shards  # noqa: F401  (re-exported: commands import them here)
from mlift.runner.shard import Progress, ShardRun, stage_usage

Kind = Literal["keep", "drop", "quarantine"]


@dataclass
class Outcome:
    """What a stage decided for one record: keep it, drop it by design (with a reason), or quarantine it (failed)."""

    kind: Kind
    record: Record | BadLine
    reason: str = ""  # a short category used for counting, e.g. "lang_id" or "llm_error"
    detail: str = ""  # free text kept with the record

    @classmethod
    def keep(cls, record: Record) -> Outcome:
        return cls("keep", record)

    @classmethod
    def drop(cls, record: Record, reason: str, detail: str = "") -> Outcome:
        return cls("drop", record, reason, detail)

    @classmethod
    def quarantine(cls, record: Record | BadLine, reason: str, detail: str = "") -> Outcome:
        return cls("quarantine", record, reason, detail)


class Stage(Protocol):
    """A pipeline step. `process` gets a batch of records and returns their outcomes.

    With `one_to_one = True` (the default) it must return exactly one outcome per input record, in order; stages that
    split records (documents -> fragments) set it to False. `usage()`, if present, returns cumulative token counters
    per model, which the runner turns into per-shard deltas for the cost ledger.
    """

    name: str
    batch_size: int

    def process(self, batch: list[Record]) -> Iterable[Outcome]: ...


@dataclass
class ShardInput:
    """One unit of work: shard `index` of `total`, and a function that reads its records."""

    index: int
    total: int
    read: Callable[[], Iterator[Record | BadLine]]


def shard_files(stage_dir: str | Path, total: int) -> list[ShardInput]:
    """Inputs read from a previous stage's output shards (shard j feeds shard j)."""
    stage_dir = Path(stage_dir)

    def reader(path: Path) -> Callable[[], Iterator[Record | BadLine]]:
        return lambda: read_records(path) if path.exists() else iter(())

    return [ShardInput(j, total, reader(stage_dir / shard_name(j, total))) for j in range(total)]


def parse_shard_selector(text: str | None) -> tuple[int, int]:
    """`--shard i/n` -> (i, n): this process does the shards j with j % n == i (Slurm: i = SLURM_ARRAY_TASK_ID)."""
    from mlift.recipe import RecipeError

    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise RecipeError(f"--shard {text!r}: expected i/n, e.g. --shard 3/8") from None
    if n < 1 or not 0 <= i < n:
        raise RecipeError(f"--shard {text!r}: need 0 <= i < n (tasks are numbered from 0, e.g. 0/8 ... 7/8)")
    return (i, n)


@dataclass
class StageStats:
    name: str
    shards_total: int
    shards_done: int = 0
    shards_skipped: int = 0  # already done by an earlier run
    shards_pending: int = 0  # not done: records failed transiently and wait for the next run
    pending: int = 0  # records waiting in those shards
    counts: Counter = field(default_factory=Counter)  # in / keep / drop / quarantine, and retried / final
    reasons: dict[str, Counter] = field(default_factory=lambda: {"drop": Counter(), "quarantine": Counter()})
    seconds: float = 0.0
    usage: dict[str, Counter] = field(default_factory=dict)

    def add_marker(self, marker: dict[str, Any]) -> None:
        self.counts.update(marker["counts"])
        for kind in ("drop", "quarantine"):
            self.reasons[kind].update(marker["reasons"].get(kind, {}))
        self.seconds += marker["seconds"]
        for model, counters in marker.get("usage", {}).items():
            self.usage.setdefault(model, Counter()).update(counters)

    def to_json(self) -> dict[str, Any]:
        return {
            "shards_total": self.shards_total,
            "shards_done": self.shards_done,
            "counts": {k: self.counts.get(k, 0) for k in ("in", "keep", "drop", "quarantine")},
            # transient failures: records retried by a rerun, quarantined for good after max_attempts, still pending
            "retries": {"retried": self.counts.get("retried", 0), "final": self.counts.get("final", 0),
                        "pending": self.pending, "shards_pending": self.shards_pending},
            "reasons": {k: dict(v.most_common()) for k, v in self.reasons.items()},
            "seconds": round(self.seconds, 3),
            "usage": {m: dict(c) for m, c in self.usage.items()},
        }


class StageRunner:
    """Runs stages of one run directory over `num_shards` shards, restricted to this process's `--shard i/n`."""

    def __init__(self, run_dir: str | Path, num_shards: int, shard: tuple[int, int] = (0, 1), progress: bool = True,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, retry_quarantined: bool = False):
        self.run_dir = Path(run_dir)
        self.num_shards = num_shards
        self.shard = shard
        self.progress = progress
        self.max_attempts = max_attempts
        self.retry_quarantined = retry_quarantined
        self.redone: set[int] = set()  # shards re-opened by retry_quarantined: later stages redo them too

    def pending_path(self, name: str, index: int) -> Path:
        return self.stage_dir(name) / "_pending" / shard_name(index, self.num_shards, ".json")

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name

    def marker_path(self, name: str, index: int) -> Path:
        return self.stage_dir(name) / "_done" / shard_name(index, self.num_shards, ".json")

    def is_done(self, name: str, index: int) -> bool:
        return self.marker_path(name, index).exists()

    def mine(self, index: int) -> bool:
        i, n = self.shard
        return index % n == i

    def run(self, stage: Stage, inputs: list[ShardInput]) -> StageStats:
        stats = StageStats(stage.name, self.num_shards)
        mine, todo = [], []
        for shard in inputs:
            if shard.total != self.num_shards:
                raise ValueError(f"stage {stage.name}: input shard {shard.index} is 1 of {shard.total}, expected {self.num_shards}")
            if not self.mine(shard.index):
                continue
            mine.append(shard)
            marker = self.marker_path(stage.name, shard.index)
            reopened = self._reopen(stage.name, shard.index) if marker.exists() else None
            if marker.exists():
                stats.shards_skipped += 1
            else:
                todo.append((shard, reopened))
        if todo:
            self._stream(stage, todo)
            self._submit_batches()
        for shard in mine:
            marker = self.marker_path(stage.name, shard.index)
            if not marker.exists():
                stats.shards_pending += 1
                stats.pending += pending_count(self.pending_path(stage.name, shard.index))
                continue
            stats.add_marker(json.loads(marker.read_text()))
            stats.shards_done += 1
        return stats

    @staticmethod
    def _submit_batches() -> None:
        """The stage's requests for an offline batch backend (mlift/llm/batch_backend.py), written and submitted."""
        if "mlift.llm.batch_backend" in sys.modules:  # only where such a backend was made
            from mlift.llm.batch_backend import submit_batches

            for note in submit_batches():
                print(f"batch: {note}", flush=True)

    def _reopen(self, name: str, j: int) -> dict[str, int] | None:
        """With retry_quarantined: a finished shard holding records quarantined after max_attempts (or one whose
        input an earlier stage just redid) loses its marker; returns the ids to retry with fresh attempts."""
        marker = self.marker_path(name, j)
        if not self.retry_quarantined:
            return None
        ids: dict[str, int] = {}
        if json.loads(marker.read_text())["counts"].get("final", 0):
            for item in read_records(self.stage_dir(name) / "quarantine" / shard_name(j, self.num_shards)):
                if isinstance(item, Record) and item.get("_attempts"):
                    ids[item.id] = 0
        if not ids and j not in self.redone:
            return None
        marker.unlink()
        self.redone.add(j)
        return ids

    def _stream(self, stage: Stage, todo: list[tuple[ShardInput, dict[str, int] | None]]) -> None:
        """The shards' records, batch after batch, through the stage's ordered window (mlift/llm/scheduler.py): up to
        `stage.workers` batches in process at once, with no barrier between batches or shards; outcomes are written
        in input order, and a shard is committed when its last batch is written."""
        from mlift.llm.scheduler import ordered

        workers = max(1, int(getattr(stage, "workers", 1)))
        runs: list[ShardRun] = []
        charged = [stage_usage(stage)]  # the stage's usage when the last shard was committed
        progress = Progress(stage, sum(1 for _ in todo), self.progress)

        def jobs() -> Iterator[tuple[tuple[ShardRun, Any], Callable[[], list[Outcome]] | None]]:
            for shard, reopened in todo:
                run = ShardRun(self, stage.name, shard.index, reopened)
                runs.append(run)
                batch: list[Record] = []
                for item in shard.read():
                    run.counts["in"] += 1
                    if isinstance(item, BadLine):  # keeps its place in the order
                        yield (run, Outcome.quarantine(item, "unreadable", item.reason)), None
                        continue
                    batch.append(item)
                    if len(batch) >= max(1, stage.batch_size):
                        yield (run, batch), partial(self._isolated, stage, batch)
                        batch = []
                if batch:
                    yield (run, batch), partial(self._isolated, stage, batch)
                yield (run, None), None  # the shard's end

        try:
            for (run, what), outcomes in ordered(jobs(), workers):
                if what is None:
                    now = stage_usage(stage)
                    if run.finish(charged[0], now):
                        charged[0] = now
                    runs.remove(run)
                    progress.shard_done(run.counts)
                elif isinstance(what, Outcome):
                    self._emit(run, what)
                else:
                    for outcome in outcomes:
                        self._emit(run, outcome)
                    progress.update(len(what), run.counts)
        except BaseException:
            for run in runs:
                run.abort()
            raise
        finally:
            progress.close()

    def _isolated(self, stage: Stage, batch: list[Record]) -> list[Outcome]:
        """stage.process(batch); if it raises, the batch again in halves, down to the record that raises, which
        becomes a transient failure with the exception's message (so a rerun retries it, max_attempts times)."""
        from mlift.llm.base import transient_error
        from mlift.recipe import RecipeError

        try:
            outcomes = list(stage.process(batch))
        except (RecipeError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:
            if len(batch) == 1:
                detail = transient_error(f"{type(exc).__name__} in stage {stage.name}: {str(exc)[:300]}")
                return [Outcome.quarantine(batch[0], "stage_error", detail)]
            half = len(batch) // 2
            return self._isolated(stage, batch[:half]) + self._isolated(stage, batch[half:])
        if getattr(stage, "one_to_one", True) and len(outcomes) != len(batch):
            raise RuntimeError(f"stage {stage.name} returned {len(outcomes)} outcomes for {len(batch)} records")
        return outcomes

    def _emit(self, run: ShardRun, outcome: Outcome) -> None:
        counts, reasons, ledger = run.counts, run.reasons, run.ledger
        obj = outcome.record.to_json()
        rid = getattr(outcome.record, "id", None)
        if rid is not None and rid in ledger.prior:
            counts["retried"] += 1
        if outcome.kind == "quarantine":
            reason, transient = classify(outcome.reason, outcome.detail)
            outcome = Outcome(outcome.kind, outcome.record, reason, outcome.detail)
            if transient and rid is not None and is_waiting(outcome.detail):
                ledger.wait(rid, reason, outcome.detail)  # an offline batch still running: no attempt used
                counts["pending"] += 1
                return
            if transient and rid is not None:
                attempts = ledger.attempt(rid, reason, outcome.detail, self.max_attempts)
                if attempts is None:
                    counts["pending"] += 1
                    return
                counts["final"] += 1
                obj = {**obj, "_attempts": attempts}
        counts[outcome.kind] += 1
        if outcome.kind != "keep":
            reasons[outcome.kind][outcome.reason or "unspecified"] += 1
            obj = {**obj, "_reason": outcome.reason, "_detail": outcome.detail}
        run.writers[outcome.kind].write(obj)


def runner_for(args: Any, run_dir: str | Path, num_shards: int, cfg: Any = None) -> StageRunner:
    """The runner of a recipe command: its --shard, --no-progress, --retry-quarantined and the recipe's max_attempts."""
    return StageRunner(run_dir, num_shards, parse_shard_selector(getattr(args, "shard", None)),
                       progress=not getattr(args, "no_progress", False),
                       max_attempts=getattr(cfg, "max_attempts", DEFAULT_MAX_ATTEMPTS),
                       retry_quarantined=getattr(args, "retry_quarantined", False))


def raise_if_pending(stats: Iterable[StageStats]) -> None:
    """After a command's stages ran: records left pending make it end with exit 4 and a message (mlift.cli)."""
    from mlift.runner.pending import PendingFailures

    stats = [s for s in stats if s.pending]
    if stats:
        raise PendingFailures(sum(s.pending for s in stats), [f"{s.name}: {s.pending}" for s in stats])


def collect_stats(run_dir: str | Path, name: str, num_shards: int) -> StageStats:
    """Aggregate the markers of a stage (all processes' shards), e.g. for the manifest or a report."""
    stats = StageStats(name, num_shards)
    for j in range(num_shards):
        marker = Path(run_dir) / name / "_done" / shard_name(j, num_shards, ".json")
        if marker.exists():
            stats.add_marker(json.loads(marker.read_text()))
            stats.shards_done += 1
    return stats


VERSIONED = ("mlift", "torch", "transformers", "trl", "peft", "accelerate", "deepspeed", "datasets", "lm-eval",
             "sacrebleu", "rouge-score", "multilingual-rouge", "sentence-transformers", "openai", "vllm", "wandb", "pydantic")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in VERSIONED:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def write_manifest(run_dir: str | Path, recipe: Any, stages: list[str], num_shards: int,
                   extra: dict[str, Any] | None = None, job_type: str | None = None) -> dict[str, Any]:
    """manifest.json: the recipe (resolved, hash, seed), versions, per-stage counts, timings and token ledger.
    With `job_type` and W&B on (WANDB_PROJECT set; see mlift/tracking.py) the run is also logged to W&B."""
    run_dir = Path(run_dir)
    manifest = {
        "recipe": recipe.as_manifest() if hasattr(recipe, "as_manifest") else recipe,
        "seed": getattr(recipe, "seed", None),
        "command": sys.argv,
        "versions": package_versions(),
        "host": platform.node(),
        "num_shards": num_shards,
        "stages": {name: collect_stats(run_dir, name, num_shards).to_json() for name in stages},
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
    write_json_atomic(run_dir / "manifest.json", manifest)
    if job_type:
        log_manifest(job_type, run_dir, manifest)
    return manifest


def log_manifest(job_type: str, run_dir: Path, manifest: dict[str, Any]) -> str | None:
    """A data job as a W&B run: the manifest as config, kept/dropped/quarantined per stage as summary and a table."""
    from mlift.tracking import log_job, run_name

    counts = {name: st["counts"] for name, st in manifest["stages"].items()}
    summary = {f"{name}/{k}": v for name, c in counts.items() for k, v in c.items()}
    rows = [[name, c["in"], c["keep"], c["drop"], c["quarantine"], manifest["stages"][name]["seconds"]]
            for name, c in counts.items()]
    config = {k: v for k, v in manifest.items() if k != "stages"}
    return log_job(job_type, run_name(run_dir), config, summary,
                   {"stages": (["stage", "in", "keep", "drop", "quarantine", "seconds"], rows)})
