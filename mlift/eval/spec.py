"""What every task family's builder shares: the task record (TaskSpec), the generation settings for the evaluated
model (Generation), and the content-addressed data files lm-eval reads."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlift.eval.configs import COMPLETION_STOPS
from mlift.eval.suite import FloresTask, XLSumTask

FALLBACK_BUDGET = {"xlsum": 256, "flores": 256}  # no tokenizer to measure references with (the task writer's CLI)


UTILS = '"""lm-eval hooks for mlift tasks."""\nfrom mlift.eval.hooks import *  # noqa: F401,F403\n'


@dataclass
class TaskSpec:
    name: str
    family: str
    lang: str  # FLORES code; for translation the non-English side
    direction: str | None = None
    builtin: bool = False
    source: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] | None = None  # until, max_gen_toks and the rule that set it
    run_as: str | None = None  # the name lm-eval is asked for when it is not `name` (a wrapper group with overrides)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """Stops and token budgets for the evaluated model: the template's end-of-turn in chat mode, the task's delimiter
    in completion mode; the budget a multiple of the longest reference in the model's tokenizer."""

    tokenizer: Any = None
    chat: bool = False
    end_of_turn: str | None = None
    context: int | None = None  # the model's context in tokens: the budget leaves at least half of it to the prompt

    def settings(self, family: str, cfg: XLSumTask | FloresTask, references: list[str]) -> dict[str, Any]:
        if cfg.until is not None:
            until, stop_rule = list(cfg.until), "suite"
        elif self.chat:
            until = [self.end_of_turn] if self.end_of_turn else []
            stop_rule = "chat template end-of-turn (+ EOS, which lm-eval always adds)"
        else:
            until, stop_rule = list(COMPLETION_STOPS[family]), "completion: task delimiter (+ EOS)"
        if cfg.max_gen_toks:
            budget, rule = cfg.max_gen_toks, {"budget_rule": "suite max_gen_toks"}
        elif self.tokenizer is None:
            budget, rule = FALLBACK_BUDGET[family], {"budget_rule": "fixed (no tokenizer to measure references)"}
        else:
            from mlift.eval.model import reference_budget

            budget, longest = reference_budget(self.tokenizer, references, cfg.budget_factor)
            rule = {"budget_rule": f"ceil({cfg.budget_factor} x longest reference in the model's tokenizer)",
                    "longest_reference_tokens": longest}
            if self.context and budget > self.context // 2:
                rule.update(uncapped=budget, capped_at="half the model's context")
                budget = self.context // 2
        return {"until": until, "stop_rule": stop_rule, "max_gen_toks": budget, **rule}


def data_cache_dir() -> Path:
    """Where materialised task data lives: content-addressed, so a rerun reuses the file and datasets' Arrow cache."""
    return Path(os.environ.get("MLIFT_EVAL_DATA_CACHE", Path.home() / ".cache" / "mlift" / "eval_data"))


def write_jsonl(name: str, rows: list[dict]) -> Path:
    blob = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path = data_cache_dir() / f"{name}.{hashlib.sha256(blob.encode()).hexdigest()[:16]}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(blob, encoding="utf-8")
        os.replace(tmp, path)
    return path.resolve()


def evaluated(test: list[dict], fewshot: list[dict] | None, first: int | None, pooled: bool) -> list[dict]:
    """The docs the run reads. lm-eval's `limit` takes the first N docs; materialising only those is the same run,
    minus the I/O. Not when few-shot examples would be drawn from the test split, where the pool must stay whole."""
    return test[:first] if first is not None and (fewshot or not pooled) else test


def data_files(name: str, test: list[dict], fewshot: list[dict] | None) -> dict[str, Any]:
    files = {"test": str(write_jsonl(f"{name}.test", test))}
    split = {"test_split": "test"}
    if fewshot:
        files["train"] = str(write_jsonl(f"{name}.fewshot", fewshot))
        split["fewshot_split"] = "train"
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": files}, **split}


def hub_rows(hub_id: str, subset: str, split: str) -> tuple[list[dict], dict[str, Any]]:
    """The rows and where they came from; a script dataset (XL-Sum) is read from its parquet export (mlift.data.hub)."""
    from mlift.data.hub import load_config

    ds, revision = load_config(hub_id, subset, split)
    return [dict(r) for r in ds], {"hub_id": hub_id, "subset": subset, **({"revision": revision} if revision else {})}


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} not found (check --data-dir, the language and the split)")
    return path
