"""The GPU paths in one prepared run (< 8 min on one H100/H200, no network): LoRA and full SFT in bf16 through
`accelerate launch` (DDP, DeepSpeed ZeRO-3 and FSDP; the saved adapter must hold tensors, trl#4416), `mlift eval --adapter`
on cuda, and the HF generation backend on cuda (`mlift answer`).

    python benchmarks/gpu_check.py --prepare      # here: copy the tiny model + data into .gpu_check/ (git-ignored)
    python benchmarks/gpu_check.py                # on the GPU machine (carry .gpu_check and .whl if wheels are needed)
    python benchmarks/gpu_check.py --dry-run      # checks + the planned commands, runs nothing (the tests do this)
    python benchmarks/gpu_check.py --cpu          # the same steps on CPU (fp32; ZeRO-3 through use_cpu), slow

It first checks what it needs and says what is missing (trl, lm-eval, datasets, deepspeed may need wheels under .whl/:
`pip install --no-index --find-links .whl trl lm-eval datasets deepspeed`); vLLM is too large to bring: skipped.
Exit status: 0 all ran steps passed, 1 a step failed, 2 something needed is missing. A JSON summary is printed last
and written to .gpu_check/summary-<mode>.json. MLIFT_GPU_CHECK_DIR puts the work directory elsewhere (the tests: a
temporary one)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MLIFT_GPU_CHECK_DIR") or REPO / ".gpu_check").absolute()
SHARED = Path(os.environ.get("MLIFT_SHARED", REPO.parent / "shared"))
NEEDED = ["torch", "transformers", "accelerate", "peft", "trl", "datasets", "lm_eval", "deepspeed", "sacrebleu", "yaml"]
# what `--prepare` copies from ../shared (../shared does not travel to the GPU machine)
DATA = ["data/alpaca/alpaca_tiny.json", "data/flores200/devtest/spa_Latn.devtest", "data/flores200/devtest/eng_Latn.devtest",
        "data/xlsum/spanish_test.jsonl", "data/xlsum/spanish_train.jsonl", "data/xlsum/spanish_val.jsonl",
        "data/m_mmlu/es_val.json", "data/m_mmlu/es_dev.json"]


def prepare() -> None:
    (WORK / "models").mkdir(parents=True, exist_ok=True)
    shutil.copytree(SHARED / "models/stories260K", WORK / "models/stories260K", dirs_exist_ok=True)
    for rel in DATA:
        (WORK / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SHARED / rel, WORK / rel)
    print(f"prepared {WORK} ({sum(f.stat().st_size for f in WORK.rglob('*') if f.is_file()) // 1024} KiB)")


def preflight(cpu: bool) -> dict:
    found = {m: importlib.util.find_spec(m) is not None for m in NEEDED}
    info: dict = {"modules": found, "missing": [m for m, ok in found.items() if not ok],
                  "vllm": "skip (too large to bring to the GPU machine)" if importlib.util.find_spec("vllm") is None
                  else "present (not exercised here)",
                  "model": (WORK / "models/stories260K/config.json").is_file(),
                  "data": all((WORK / rel).is_file() for rel in DATA),
                  "wheels": sorted(p.name for p in (REPO / ".whl").glob("*.whl")) if (REPO / ".whl").is_dir() else []}
    if found["torch"]:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["device_name"] = torch.cuda.get_device_name(0)
            info["bf16"] = torch.cuda.is_bf16_supported()
    if not cpu and not info.get("cuda"):
        info["missing"].append("cuda (use --cpu for the CPU run)")
    if not info["model"] or not info["data"]:
        info["missing"].append(f"{WORK} (run `python benchmarks/gpu_check.py --prepare` where ../shared exists)")
    return info


def accelerate_config(name: str, cpu: bool) -> Path:
    import yaml

    cfg = yaml.safe_load((REPO / "recipes/accelerate" / name).read_text())
    cfg.update(num_processes=2 if cpu else 1, mixed_precision="no" if cpu else "bf16", use_cpu=cpu)
    if cpu and cfg["distributed_type"] == "MULTI_GPU":  # MULTI_CPU would silently run one process (DESIGN.md 3)
        cfg.update(distributed_type="NO", num_processes=1)
    if cpu and cfg["distributed_type"] == "FSDP":  # meta-device loading needs a GPU to materialise on
        cfg["fsdp_config"]["fsdp_cpu_ram_efficient_loading"] = False
    path = WORK / ("cpu" if cpu else "gpu") / f"accelerate-{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_recipe(name: str, lora: bool, cpu: bool) -> Path:
    import yaml

    recipe = {
        "seed": 0, "output_dir": str(runs_dir(cpu) / name),
        "model": {"name_or_path": str(WORK / "models/stories260K")},
        "data": {"datasets": [{"path": str(WORK / "data/alpaca/alpaca_tiny.json")}]},
        "sft": {"learning_rate": 5e-3, "max_steps": 8, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                "max_length": 256, "logging_steps": 2, "save_strategy": "no", "report_to": "none",
                "bf16": not cpu, "use_cpu": cpu},
    }
    if lora:
        recipe["lora"] = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}
    path = WORK / ("cpu" if cpu else "gpu") / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def runs_dir(cpu: bool) -> Path:
    return WORK / ("cpu" if cpu else "gpu") / "runs"


def steps(cpu: bool) -> list[tuple[str, list[str], str]]:
    """(name, command, what is checked after it)."""
    acc = [sys.executable, "-m", "accelerate.commands.launch"]
    out = []
    for name, config, lora in [("lora-ddp", "ddp.yaml", True), ("lora-zero3", "zero3.yaml", True),
                               ("full-zero3", "zero3.yaml", False), ("lora-fsdp", "fsdp.yaml", True),
                               ("full-fsdp", "fsdp.yaml", False)]:
        out.append((name, [*acc, "--config_file", str(accelerate_config(config, cpu)), "-m", "mlift.train",
                           str(train_recipe(name, lora, cpu)), "--no-progress"], "adapter" if lora else "model"))
    device = "cpu" if cpu else "cuda"
    base = str(WORK / "models/stories260K")
    runs = runs_dir(cpu)
    out.append(("eval-adapter", [sys.executable, "-m", "mlift", "eval", "--model", base, "--adapter", str(runs / "lora-zero3"),
                                 "--suite", str(REPO / "recipes/eval/local_small.yaml"), "--langs", "spa_Latn",
                                 "--data-dir", str(WORK / "data"), "--limit", "2", "--device", device,
                                 "--out", str(runs / "eval")], "eval"))
    out.append(("hf-generate", [sys.executable, "-m", "mlift", "answer", "--model", base, "--adapter", str(runs / "lora-ddp"),
                                "--langs", "spa_Latn", "eng_Latn", "--limit", "2", "--max-new-tokens", "16",
                                "--device", device, "--out", str(runs / "answers")], "answers"))
    return out


def check(kind: str, name: str, cpu: bool) -> str | None:
    """None if the step's output is right, else what is wrong."""
    run = runs_dir(cpu) / name
    if kind in ("adapter", "model"):
        manifest = json.loads((run / "manifest.json").read_text())
        if manifest["metrics"]["global_step"] != 8:
            return f"global_step {manifest['metrics']['global_step']} != 8"
        if kind == "adapter":
            size = (run / "adapter_model.safetensors").stat().st_size
            if size <= 40 or not manifest["model"].get("adapter_params"):
                return f"empty adapter ({size} bytes; trl#4416)"
        elif not (run / "model.safetensors").is_file():
            return "no model.safetensors saved"
        if "fsdp" in name and not (manifest.get("fsdp") or {}).get("sharding", "").endswith("FULL_SHARD"):
            return f"FSDP full shard was not used: {manifest.get('fsdp')}"
        batch = manifest.get("batch", {})
        if batch.get("gradient_accumulation_steps") != 2:
            return f"gradient accumulation {batch.get('gradient_accumulation_steps')} != 2 (the recipe's)"
    elif kind == "eval":
        rows = json.loads((runs_dir(cpu) / "eval/table.json").read_text())
        if not rows or all(r["value"] is None for r in rows):
            return "no eval result"
    elif kind == "answers":
        rows = (runs_dir(cpu) / "answers/answers.jsonl").read_text().splitlines()
        if len(rows) != 4:
            return f"{len(rows)} answers, expected 4"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true", help="copy the tiny model and data from ../shared, then stop")
    parser.add_argument("--dry-run", action="store_true", help="checks and planned commands only")
    parser.add_argument("--cpu", action="store_true", help="run the steps on CPU (fp32, ZeRO-3 via use_cpu)")
    args = parser.parse_args()
    if args.prepare:
        prepare()
        return 0
    started = time.time()
    info = preflight(args.cpu or args.dry_run)
    summary: dict = {"mode": "dry-run" if args.dry_run else "cpu" if args.cpu else "gpu", "preflight": info, "steps": []}
    for k, v in info.items():
        print(f"check  {k}: {v}")
    if info["missing"] and not args.dry_run:
        print(f"MISSING: {', '.join(info['missing'])}")
        print("  wheels: pip install --no-index --find-links .whl <package>  (bring trl, lm-eval, datasets, deepspeed)")
        return _finish(summary, 2, started)
    WORK.mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    failed = False
    for name, cmd, kind in steps(args.cpu):
        if args.dry_run:
            if kind in ("adapter", "model"):  # the recipes the GPU run will use must validate here already
                from mlift.train.sft import load_train_recipe

                load_train_recipe(WORK / "gpu" / f"{name}.yaml")
            print(f"plan   {name}: {' '.join(cmd)}")
            summary["steps"].append({"name": name, "status": "planned", "command": cmd})
            continue
        t0 = time.time()
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        (runs_dir(args.cpu) / f"{name}.log").write_text(done.stdout + done.stderr)
        problem = f"exit {done.returncode}: {done.stderr.strip()[-600:]}" if done.returncode else check(kind, name, args.cpu)
        status = "ok" if problem is None else "FAIL"
        failed |= problem is not None
        summary["steps"].append({"name": name, "status": status, "seconds": round(time.time() - t0, 1),
                                 "problem": problem})
        print(f"{status:<6} {name} ({time.time() - t0:.1f} s)" + (f": {problem}" if problem else ""))
    summary["steps"].append({"name": "vllm", "status": "skip", "problem": info["vllm"]})
    return _finish(summary, 1 if failed else 0, started)


def _finish(summary: dict, rc: int, started: float) -> int:
    summary["seconds"] = round(time.time() - started, 1)
    summary["rc"] = rc
    WORK.mkdir(exist_ok=True)
    (WORK / f"summary-{summary.get('mode', 'gpu')}.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary, default=str))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
