"""One shard being written by the runner (temp files until its commit, counts, pending ledger, marker) and the
progress bar of a stage; split from mlift/runner/stage.py, which streams records through them."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tqdm.auto import tqdm

from mlift.records import AtomicWriter, shard_name, write_json_atomic
from mlift.runner.pending import Ledger


class ShardRun:
    """One shard being written: its writers (temp files until commit), counts, reasons and pending ledger."""

    def __init__(self, runner: Any, name: str, j: int, reopened: dict[str, int] | None):  # runner: its StageRunner
        self.runner, self.name, self.j = runner, name, j
        n = runner.num_shards
        self.ledger = Ledger.load(runner.pending_path(name, j), reopened)
        out = runner.stage_dir(name)
        for stale in out.glob(f"**/.{shard_name(j, n)}.tmp-*"):
            stale.unlink(missing_ok=True)  # left by a killed attempt
        self.writers = {
            "keep": AtomicWriter(out / shard_name(j, n)),
            "drop": AtomicWriter(out / "dropped" / shard_name(j, n)),
            "quarantine": AtomicWriter(out / "quarantine" / shard_name(j, n)),
        }
        self.counts: Counter = Counter()
        self.reasons: dict[str, Counter] = {"drop": Counter(), "quarantine": Counter()}
        self.start = time.perf_counter()

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()

    def finish(self, usage_before: dict[str, dict[str, float]], usage_now: dict[str, dict[str, float]]) -> bool:
        """Commit the shard and write its marker (True), or (records pending) keep nothing and save the attempts. The usage
        charged to a shard is what the stage spent since the previous shard was committed (requests of the next
        shard may already be in flight: the totals are exact, the split between neighbours is not)."""
        runner, name, j, counts = self.runner, self.name, self.j, self.counts
        if self.ledger.now:  # not complete: the next run redoes the shard from the cache
            self.abort()
            self.ledger.save({k: counts.get(k, 0) for k in ("in", "keep", "drop", "quarantine", "pending", "retried")})
            return False
        # Data first, marker last: a crash in between only means the shard is redone, identically.
        for kind, writer in self.writers.items():
            if writer.count or kind == "keep":
                writer.commit()
            else:
                writer.abort()
                writer.path.unlink(missing_ok=True)
        write_json_atomic(runner.marker_path(name, j), {
            "stage": name, "shard": j, "num_shards": runner.num_shards,
            "counts": {k: counts.get(k, 0) for k in ("in", "keep", "drop", "quarantine", "retried", "final")},
            "reasons": {k: dict(v) for k, v in self.reasons.items()},
            "seconds": round(time.perf_counter() - self.start, 4),
            "usage": usage_delta(usage_before, usage_now),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        self.ledger.clear()
        return True


class Progress:
    """The stage's progress bar: records, outcomes, and for LLM stages requests in flight, requests/s and tokens/s."""

    def __init__(self, stage: Any, shards: int, enabled: bool):
        self.stage, self.shards, self.done = stage, shards, 0
        self.finished: Counter = Counter()  # outcomes of the shards already committed
        self.bar = tqdm(desc=f"{stage.name} [0/{shards} shards]", unit="rec", disable=not enabled, leave=False,
                        dynamic_ncols=True)
        self.start = time.perf_counter()
        self.usage0 = stage_usage(stage) if enabled else {}
        self.shown = 0.0

    def update(self, n: int, counts: Counter) -> None:
        """`counts`: the shard being written; the shards finished before it are added."""
        self.bar.update(n)
        counts = self.finished + counts
        now = time.perf_counter()
        if self.bar.disable or now - self.shown < 0.5:
            return
        from mlift.llm.scheduler import IN_FLIGHT

        self.shown = now
        delta = usage_delta(self.usage0, stage_usage(self.stage))
        post = {"kept": counts["keep"], "dropped": counts["drop"], "quarantined": counts["quarantine"],
                "pending": counts["pending"]}
        if delta:
            secs = max(1e-9, now - self.start)
            post.update(in_flight=IN_FLIGHT.now,
                        req_s=f"{sum(d.get('generated', 0) for d in delta.values()) / secs:.1f}",
                        tok_s=f"{sum(d.get('completion_tokens', 0) for d in delta.values()) / secs:.0f}")
        self.bar.set_postfix(post)

    def shard_done(self, counts: Counter) -> None:
        self.done += 1
        self.finished.update(counts)
        self.bar.set_description(f"{self.stage.name} [{self.done}/{self.shards} shards]")

    def close(self) -> None:
        self.bar.close()


def stage_usage(stage: Any) -> dict[str, dict[str, float]]:
    fn = getattr(stage, "usage", None)
    return fn() if callable(fn) else {}


def usage_delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    delta = {}
    for model, counters in after.items():
        d = {k: v - before.get(model, {}).get(k, 0) for k, v in counters.items()}
        if any(d.values()):
            delta[model] = d
    return delta
