"""The lm-eval driver: build the suite's tasks, run `lm_eval.simple_evaluate` on an HF (CPU/GPU) or vLLM (GPU) model,
and write lm-eval's full results (configs, versions, seeds, samples) plus a flat table (model, task, lang, direction,
metric, value, n) as CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from mlift.eval import metrics
from mlift.eval.item_scores import write_items
from mlift.eval.lmeval import build_lmeval
from mlift.eval.model import decide_chat, end_of_turn, load_tokenizer, model_context, template_info, tokenizer_source
from mlift.eval.spec import Generation, TaskSpec
from mlift.eval.suite import EvalSuite
from mlift.eval.tasks import build_tasks
from mlift.records import write_json_atomic

__all__ = ["EvalSuite", "run_eval", "model_spec", "flat_table"]  # EvalSuite lives in mlift.eval.suite

TABLE_FIELDS = ["model", "task", "family", "lang", "direction", "metric", "value", "stderr", "n"]


def model_spec(suite: EvalSuite, model: str, adapter: str | None) -> tuple[str, dict[str, Any]]:
    """lm-eval's (model type, model_args) for the suite's backend. The tokenizer comes from the adapter directory when
    it has one (training saved it there, with the chat template it trained on); else lm-eval loads the model's."""
    args: dict[str, Any] = {"pretrained": model, "dtype": suite.dtype}
    tokenizer = tokenizer_source(model, adapter)
    if tokenizer != model:
        args["tokenizer"] = tokenizer
    args.update(suite.model_args)
    if suite.max_length:
        args["max_length"] = suite.max_length
    if suite.backend == "vllm":
        args.setdefault("seed", suite.seed)
        if adapter:
            args["lora_local_path"] = adapter
        return "vllm", args
    if adapter:
        args["peft"] = adapter
    return "hf", args


def run_eval(suite: EvalSuite, model: str, out: str | Path, adapter: str | None = None,
             manifest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Evaluate and write `out/{results.json, samples/, items.jsonl, table.csv, table.json, manifest.json}`; return the
    table."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if suite.threads:
        import torch

        torch.set_num_threads(suite.threads)
    tok_source = str(suite.model_args.get("tokenizer") or tokenizer_source(model, adapter))
    tokenizer = load_tokenizer(tok_source)
    chat, chat_reason = decide_chat(suite.apply_chat_template, model, adapter, tokenizer)
    template = {**template_info(tokenizer, tok_source), "applied": chat, "reason": chat_reason}
    gen = Generation(tokenizer=tokenizer, chat=chat, end_of_turn=end_of_turn(tokenizer) if chat else None,
                     context=model_context(model, suite.max_length))
    skipped: list[str] = []
    specs = build_tasks(out / "tasks", suite.langs, suite.xlsum, suite.flores, suite.mmlu, suite.data_dir,
                        limit=suite.limit, num_fewshot=suite.num_fewshot, skipped=skipped, generation=gen)
    specs += build_lmeval(suite.tasks, suite.langs, out / "tasks")
    if not specs:
        raise ValueError("the suite selects no task (enable xlsum, flores, mmlu or tasks, and check --langs)")
    # Scanning lm-eval's ~10k built-in YAMLs costs seconds; do it only when a built-in task is used.
    manager = TaskManager(include_path=str(out / "tasks"), include_defaults=any(s.builtin for s in specs))
    model_type, model_args = model_spec(suite, model, adapter)
    results = lm_eval.simple_evaluate(
        model=model_type, model_args=model_args, tasks=[s.run_as or s.name for s in specs], num_fewshot=suite.num_fewshot,
        batch_size=suite.batch_size, device=suite.device, limit=suite.limit, log_samples=True,
        apply_chat_template=chat, fewshot_as_multiturn=chat and suite.num_fewshot > 0,
        task_manager=manager, random_seed=suite.seed, numpy_random_seed=suite.seed, torch_random_seed=suite.seed,
        fewshot_random_seed=suite.seed, bootstrap_iters=0,
    )
    table = flat_table(results, specs, model)
    write_results(out, results, table)
    write_items(out, [s.to_json() for s in specs])  # per-item scores for the report's intervals and tests
    write_json_atomic(out / "manifest.json", {
        **(manifest or {}), "model": model, "adapter": adapter, "backend": suite.backend, "lm_eval_model": model_type,
        "model_args": model_args, "apply_chat_template": chat, "chat_template": template, "batch_size": suite.batch_size,
        "seed": suite.seed, "threads": suite.threads, "num_fewshot": suite.num_fewshot, "limit": suite.limit,
        "tasks": [s.to_json() for s in specs], "skipped": skipped,
        "rouge": metrics.rouge_provenance(suite.langs, suite.xlsum.rouge_mode) if suite.xlsum else None,
        "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__")
        else _version("lm_eval"), "seconds": round(time.time() - t0, 2)})
    return table


def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg.replace("_", "-"))


def flat_table(results: dict[str, Any], specs: list[TaskSpec], model: str) -> list[dict[str, Any]]:
    rows = []
    for spec in specs:
        scores = results["results"].get(spec.name, {})
        n_info = results.get("n-samples", {}).get(spec.name, {})
        n = n_info.get("effective") if isinstance(n_info, dict) else None
        if n is None and spec.builtin:  # a group: sum its subtasks
            n = sum(v.get("effective", 0) for k, v in results.get("n-samples", {}).items() if k.startswith(spec.name))
        for key, value in scores.items():
            if "," not in key or "_stderr" in key or not isinstance(value, (int, float)):
                continue
            metric, filt = key.split(",", 1)
            stderr = scores.get(f"{metric}_stderr,{filt}")
            if filt != "none":  # a task scored under several filters (e.g. MGSM) gives one metric per filter
                metric = f"{metric}({filt})"
            rows.append({"model": model, "task": spec.name, "family": spec.family, "lang": spec.lang,
                         "direction": spec.direction, "metric": metric, "value": _num(value),
                         "stderr": _num(stderr) if isinstance(stderr, (int, float)) else None, "n": n})
    return rows


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def write_results(out: Path, results: dict[str, Any], table: list[dict[str, Any]]) -> None:
    samples = results.pop("samples", {}) or {}
    write_json_atomic(out / "results.json", json.loads(json.dumps(results, default=str)))
    sdir = out / "samples"
    sdir.mkdir(exist_ok=True)
    for task, rows in samples.items():
        with (sdir / f"{task}.jsonl").open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    results["samples"] = samples
    write_json_atomic(out / "table.json", table)
    with (out / "table.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_FIELDS)
        w.writeheader()
        w.writerows(table)
