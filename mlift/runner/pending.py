"""Records that failed for a transient reason (server down, timeout, 429, 5xx, an exception in the backend or stage):
kept as *pending* across reruns instead of being quarantined for good.

A shard with pending records gets no completion marker; instead `<stage>/_pending/<shard>.json` holds, per record id,
the attempts so far and the last error. The next run redoes the shard (the request cache makes every finished
generation free, so in effect only the pending records reach the model) and counts one more attempt for each record
that fails again; at `max_attempts` the record is quarantined for good, with the reason and the attempt count, and
the shard completes. `--retry-quarantined` re-opens finished shards that hold such final records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from mlift.llm.base import PROMPT_TOO_LONG, is_transient
from mlift.records import write_json_atomic

DEFAULT_MAX_ATTEMPTS = 3
# The recipe field (`max_attempts: 3`) of every command whose stages call a model.
MaxAttempts = Annotated[int, Field(ge=1, description="runs that try a record which failed for a transient reason "
                                   "(server down, timeout, 429, 5xx, backend exception) before it is quarantined for good")]


class PendingFailures(Exception):
    """Raised by a command whose run left pending records; mlift.cli prints it and exits 4."""

    def __init__(self, count: int, where: list[str]):
        self.count = count
        self.where = where
        shown = ", ".join(where[:6]) + (" ..." if len(where) > 6 else "")
        super().__init__(f"{count} record(s) pending after transient failures ({shown}); rerun the same command to "
                         "retry them (finished work is reused from the cache)")


def classify(reason: str, detail: str) -> tuple[str, bool]:
    """(reason to count, transient?) for a quarantine outcome, from the error text its stage copied into `detail`."""
    if PROMPT_TOO_LONG in detail:
        return PROMPT_TOO_LONG, False
    return reason, is_transient(detail)


@dataclass
class Ledger:
    """The attempts of one shard's failing records, as read at the start of a run and updated during it."""

    path: Path
    prior: dict[str, int] = field(default_factory=dict)  # id -> attempts made by earlier runs
    now: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {attempts, reason, detail} still pending

    @classmethod
    def load(cls, path: Path, reopened: dict[str, int] | None = None) -> Ledger:
        prior = dict(reopened or {})
        if path.exists():
            prior.update({k: int(v["attempts"]) for k, v in json.loads(path.read_text())["pending"].items()})
        return cls(path, prior)

    def attempt(self, rid: str, reason: str, detail: str, max_attempts: int) -> int | None:
        """Count a transient failure; the attempt number if it is now final, None if it stays pending."""
        n = self.prior.get(rid, 0) + 1
        if n >= max_attempts:
            return n
        self.now[rid] = {"attempts": n, "reason": reason, "detail": detail}
        return None

    def wait(self, rid: str, reason: str, detail: str) -> None:
        """A record waiting for an offline batch (mlift/llm/batch_backend.py): pending, with no attempt counted."""
        self.now[rid] = {"attempts": self.prior.get(rid, 0), "reason": reason, "detail": detail}

    def save(self, counts: dict[str, int]) -> None:
        write_json_atomic(self.path, {"counts": counts, "pending": self.now})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def pending_count(path: Path) -> int:
    return len(json.loads(path.read_text())["pending"]) if path.exists() else 0
