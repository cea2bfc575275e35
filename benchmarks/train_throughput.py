"""Training throughput: `mlift train` vs a bare TRL script on the same model, data and SFT settings (tokens/s ratio,
target >= 0.98), and the fraction of real (non-pad) tokens per batch with packing off and on.

    .venv/bin/python benchmarks/train_throughput.py [--model ../shared/models/stories260K] [--steps 40] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

SFT = {"learning_rate": 1e-3, "per_device_train_batch_size": 8, "max_length": 256, "logging_steps": 10,
       "save_strategy": "no", "report_to": "none", "bf16": False, "gradient_checkpointing": False,
       "assistant_only_loss": True, "seed": 0, "data_seed": 0}


def rows(data: Path, limit: int) -> list[dict]:
    from mlift.data.conversations import DataSource, iter_conversations

    return [{"messages": r["messages"]} for r in iter_conversations(DataSource(path=str(data), limit=limit))]


def bare_trl(model: str, data: Path, out: Path, steps: int, limit: int) -> dict:
    """What a user would write by hand with TRL (same template: the model has none)."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from mlift.train.chat import DEFAULT_CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    ds = Dataset.from_list(rows(data, limit))
    args = SFTConfig(output_dir=str(out), max_steps=steps, **SFT)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    return _timed(trainer)


def mlift_train(model: str, data: Path, out: Path, steps: int, limit: int) -> dict:
    from mlift.train.sft import build_trainer, load_train_recipe

    sft = {k: v for k, v in SFT.items() if k not in ("seed", "data_seed")}
    recipe = load_train_recipe(None, base={
        "seed": 0, "output_dir": str(out), "model": {"name_or_path": model},
        "data": {"datasets": [{"path": str(data), "limit": limit}], "shuffle": False},
        "sft": {**sft, "max_steps": steps}})
    trainer, _ = build_trainer(recipe)
    return _timed(trainer)


def _timed(trainer) -> dict:
    t0 = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - t0
    tokens = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e][-1]
    return {"tokens": tokens, "train_runtime": result.metrics["train_runtime"], "wall": wall,
            "tokens_per_s": tokens / result.metrics["train_runtime"]}


def real_token_fraction(model: str, data: Path, packing: bool, limit: int, batches: int = 20) -> float:
    import torch

    from mlift.train.sft import build_trainer, load_train_recipe

    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_train_recipe(None, base={
            "seed": 0, "output_dir": tmp, "model": {"name_or_path": model},
            "data": {"datasets": [{"path": str(data), "limit": limit}]},
            "sft": {**{k: v for k, v in SFT.items() if k not in ("seed", "data_seed")}, "packing": packing}})
        trainer, _ = build_trainer(recipe)
        real = total = 0
        for i, batch in enumerate(trainer.get_train_dataloader()):
            if i == batches:
                break
            ids = batch["input_ids"]
            # padding-free packing flattens a batch into one row without pad tokens; otherwise the mask says
            mask = batch.get("attention_mask", torch.ones_like(ids))
            real += int(mask.sum())
            total += ids.numel()
    return real / total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(REPO.parent / "shared/models/stories260K"))
    p.add_argument("--data", default=str(REPO.parent / "shared/data/alpaca/alpaca_en_demo.json"))
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--limit", type=int, default=400, help="examples used")
    a = p.parse_args()
    data = Path(a.data)
    runs: dict[str, list[dict]] = {"bare_trl": [], "mlift": []}
    with tempfile.TemporaryDirectory() as tmp:
        bare_trl(a.model, data, Path(tmp) / "warm", 5, a.limit)  # warm caches/imports before timing either
        for rep in range(a.reps):  # alternate so drift in machine load hits both alike
            runs["bare_trl"].append(bare_trl(a.model, data, Path(tmp) / f"b{rep}", a.steps, a.limit))
            runs["mlift"].append(mlift_train(a.model, data, Path(tmp) / f"m{rep}", a.steps, a.limit))
    best = {k: max(r["tokens_per_s"] for r in v) for k, v in runs.items()}
    median = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in runs.items()}
    report = {
        "model": a.model, "data": str(data), "steps": a.steps, "reps": a.reps,
        "tokens_per_s_best": best, "tokens_per_s_median": median,
        "ratio_best": best["mlift"] / best["bare_trl"], "ratio_median": median["mlift"] / median["bare_trl"],
        "same_tokens": runs["mlift"][0]["tokens"] == runs["bare_trl"][0]["tokens"],
        "real_token_fraction": {"packing_off": real_token_fraction(a.model, data, False, a.limit),
                                "packing_on": real_token_fraction(a.model, data, True, a.limit)},
        "runs": runs,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
