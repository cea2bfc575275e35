"""SFT training with TRL: one entry for a laptop CPU, one GPU, or many nodes.

    mlift train RECIPE [--set k=v] [--resume]
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m mlift.train RECIPE [--resume]
    mlift train RECIPE --slurm [--dry-run]       # render (and submit) slurm/train.sbatch with the recipe's values

The recipe names the model, the datasets with weights (mlift.train_data), SFTConfig settings (`sft:`, passed through and
validated against TRL's SFTConfig), optional LoRA, W&B grouping and Slurm resources.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from mlift.fingerprint import ChatTemplateRef
from mlift.recipe import Recipe, Schema
from mlift.train_data import DatasetSource

# SFTConfig keys the recipe owns at the top level (one source of truth for the manifest and resume)
OWNED_SFT_KEYS = {"output_dir": "output_dir", "seed": "seed", "data_seed": "seed"}


class ModelCfg(Schema):
    name_or_path: str = Field(description="HF hub id or local directory")
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    chat_template: ChatTemplateRef | None = Field(
        None, description="None: the tokenizer's, or mlift's default when it has none; 'default'; 'tokenizer'; "
                          "a .jinja file; or an inline Jinja string")
    eos_token: str | None = Field(None, description="EOS to train (must be in the vocabulary)")
    trust_remote_code: bool = False
    attn_implementation: str | None = None


class DataCfg(Schema):
    datasets: list[DatasetSource] = Field(min_length=1)
    shuffle: bool = True


class LoraCfg(Schema):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    modules_to_save: list[str] | None = None


class WandbCfg(Schema):
    project: str | None = Field(None, description="default: $WANDB_PROJECT, else 'mlift'")
    group: str | None = Field(None, description="default: $WANDB_RUN_GROUP (a sweep's name), else the experiment "
                                                "(recipes/<model>/<experiment>/...)")
    job_type: str = "train"
    tags: list[str] = Field(default_factory=list)
    entity: str | None = None
    name: str | None = None


class SlurmCfg(Schema):
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(8, ge=0)
    cpus_per_task: int = Field(32, ge=1)
    mem: str | None = "0"
    time: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    gres: str | None = Field(None, description="default gpu:<gpus_per_node> when gpus_per_node > 0")
    accelerate_config: str = "recipes/accelerate/zero3.yaml"
    env_activate: str = Field(".venv/bin/activate", description="sourced inside srun on every node")
    workdir: str | None = Field(None, description="default: the current directory at render time")
    port: int = 29500
    signal_seconds: int = Field(300, ge=10, description="USR1 this long before the time limit: requeue + resume")
    extra_sbatch: list[str] = Field(default_factory=list)
    template: str | None = Field(None, description="default: slurm/train.sbatch of this checkout")


class TrainRecipe(Schema):
    seed: int = 42
    output_dir: str
    model: ModelCfg
    data: DataCfg
    sft: dict[str, Any] = Field(default_factory=dict, description="trl.SFTConfig keyword arguments")
    lora: LoraCfg | None = None
    wandb: WandbCfg = Field(default_factory=WandbCfg)
    slurm: SlurmCfg = Field(default_factory=SlurmCfg)

    @field_validator("sft")
    @classmethod
    def _typed_sft(cls, value: dict[str, Any]) -> dict[str, Any]:
        # names, types and ranges from TRL's SFTConfig itself; `1e-3` read by YAML as text becomes a number
        from mlift.passthrough import TRAINING_RANGES, check_section, sft_types

        return check_section(value, sft_types(), "SFTConfig", TRAINING_RANGES, OWNED_SFT_KEYS)


def load_train_recipe(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                      base: dict[str, Any] | None = None) -> Recipe[TrainRecipe]:
    from mlift.recipe import load_recipe

    return load_recipe(path, TrainRecipe, overrides, base=base)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def log(msg: str) -> None:
    if is_main_process():
        print(f"mlift train: {msg}", file=sys.stderr, flush=True)


def experiment_name(recipe: Recipe[TrainRecipe]) -> str:
    """recipes/<model>/<experiment>/config.yaml -> <model>/<experiment>; else the output dir's name."""
    if recipe.path is not None:
        parts = Path(recipe.path).resolve().parts
        if "recipes" in parts:
            rel = parts[parts.index("recipes") + 1 : -1]
            if rel:
                return "/".join(rel)
    return Path(recipe.cfg.output_dir).name


def configure_wandb(recipe: Recipe[TrainRecipe], report_to: list[str]) -> list[str]:
    """Keep wandb in report_to only when it can work; set project/group/job_type/tags through the env, which
    transformers' WandbCallback (main process only) passes to wandb.init."""
    if "wandb" not in report_to:
        return report_to
    from mlift.tracking import wandb_off_reason

    rest = [r for r in report_to if r != "wandb"]
    why = wandb_off_reason()
    if why:
        log(f"W&B off: {why}; training continues without it")
        return rest
    mode = os.environ.get("WANDB_MODE", "").lower()
    w = recipe.cfg.wandb
    cfg = recipe.cfg
    tags = w.tags or [Path(cfg.model.name_or_path).name, "lora" if cfg.lora else "full"]
    # The recipe wins; else what the environment says (a sweep sets WANDB_PROJECT / WANDB_RUN_GROUP for all its jobs).
    project = w.project or os.environ.get("WANDB_PROJECT") or "mlift"
    group = w.group or os.environ.get("WANDB_RUN_GROUP") or experiment_name(recipe)
    env = {"WANDB_PROJECT": project, "WANDB_RUN_GROUP": group,
           "WANDB_JOB_TYPE": w.job_type, "WANDB_TAGS": ",".join(tags), "WANDB_ENTITY": w.entity}
    for key, value in env.items():
        if value:
            os.environ[key] = value
    log(f"W&B on ({mode or 'online'}): project={project} group={group} job_type={w.job_type}")
    return [*rest, "wandb"]


def build_sft_config(recipe: Recipe[TrainRecipe]):
    """SFTConfig from the recipe, with defaults that are right for this machine unless the recipe says otherwise."""
    import torch
    from trl import SFTConfig

    cfg = recipe.cfg
    kwargs: dict[str, Any] = {"assistant_only_loss": True, "logging_steps": 10, "report_to": "none",
                              "save_total_limit": 2}
    if not torch.cuda.is_available():
        # TRL defaults to bf16 (fails on CPU) and gradient checkpointing (slow on CPU); without use_cpu, a CPU
        # `accelerate launch` with DeepSpeed sees world size 1 and DeepSpeed's batch-size check fails
        kwargs.update(bf16=False, gradient_checkpointing=False, use_cpu=True)
    kwargs.update(cfg.sft)
    report_to = kwargs["report_to"]
    report_to = [report_to] if isinstance(report_to, str) else list(report_to)
    report_to = [r for r in report_to if r != "none"]
    kwargs["report_to"] = configure_wandb(recipe, report_to) or "none"
    if "wandb" in report_to and "run_name" not in kwargs:
        kwargs["run_name"] = cfg.wandb.name or Path(cfg.output_dir).name
    kwargs.setdefault("model_init_kwargs", {})
    kwargs["model_init_kwargs"] = {"dtype": cfg.model.dtype, "revision": cfg.model.revision,
                                   "trust_remote_code": cfg.model.trust_remote_code,
                                   **({"attn_implementation": cfg.model.attn_implementation}
                                      if cfg.model.attn_implementation else {}),
                                   **kwargs["model_init_kwargs"]}
    return SFTConfig(output_dir=cfg.output_dir, seed=cfg.seed, data_seed=cfg.seed, **kwargs)


def build_trainer(recipe: Recipe[TrainRecipe]):
    """(trainer, info): the SFTTrainer ready to train, and what went into it (template, data provenance)."""
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from mlift.chat import prepare_tokenizer
    from mlift.train_data import build_mixture

    cfg = recipe.cfg
    try:
        args = build_sft_config(recipe)  # first: under accelerate/DeepSpeed it sets up the distributed state
    except ValueError as exc:  # SFTConfig's own cross-field checks (e.g. load_best_model_at_end without evaluation)
        from mlift.recipe import RecipeError

        raise RecipeError(f"{recipe.path}: sft: TRL's SFTConfig refuses these settings: {exc}") from None
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.name_or_path, revision=cfg.model.revision,
                                              trust_remote_code=cfg.model.trust_remote_code)
    try:
        chat_info = prepare_tokenizer(tokenizer, cfg.model.chat_template, cfg.model.eos_token,
                                      args.assistant_only_loss)
    except ValueError as exc:
        from mlift.recipe import RecipeError

        raise RecipeError(f"{cfg.model.name_or_path}: {exc}") from None
    with args.main_process_first(desc="load and mix datasets"):
        dataset, data_info = build_mixture(cfg.data.datasets, cfg.seed, cfg.data.shuffle)
        dataset = dataset.select_columns(["messages"])  # lang/meta stay out of the collator
        if chat_info["loss_mask"] == "template-prefix":
            from mlift.chat_masks import trainer_dataset

            dataset = trainer_dataset(dataset, tokenizer, chat_info, args)
    if data_info.get("bad_lines"):
        log(f"{data_info['bad_lines']} malformed data row(s) left out, see {data_info['quarantine']}")
    peft_config = None
    if cfg.lora:
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, modules_to_save=cfg.lora.modules_to_save,
                                 task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=cfg.model.name_or_path, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    return trainer, {"chat": chat_info, "data": data_info}


def latest_checkpoint(output_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


def check_adapter(output_dir: Path) -> dict[str, Any]:
    """A saved LoRA adapter must hold tensors (ZeRO-3 can save an empty one: trl#4416)."""
    from safetensors import safe_open

    path = output_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise RuntimeError(f"no adapter saved at {path}")
    with safe_open(str(path), "pt") as fh:
        keys = list(fh.keys())
        numel = sum(math.prod(fh.get_slice(k).get_shape()) for k in keys)
    if not keys or numel == 0:
        raise RuntimeError(f"the saved adapter {path} is empty ({path.stat().st_size} bytes): under ZeRO-3 set "
                           "zero3_save_16bit_model: true in the accelerate config (trl#4416)")
    return {"adapter_tensors": len(keys), "adapter_params": numel, "adapter_bytes": path.stat().st_size}


def _zero_stage(trainer) -> int | None:
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return None
    return trainer.accelerator.state.deepspeed_plugin.zero_stage


def batch_info(trainer) -> dict[str, Any]:
    """The batch the run really used: the trainer's settings and, under DeepSpeed, what the engine was configured with
    (an accelerate config that hard-codes gradient_accumulation_steps would override the recipe's)."""
    args = trainer.args
    gas = args.gradient_accumulation_steps  # the Trainer accumulates itself; DeepSpeed's own count is checked below
    info: dict[str, Any] = {"per_device": args.per_device_train_batch_size, "world_size": args.world_size,
                            "gradient_accumulation_steps": gas,
                            "effective": args.per_device_train_batch_size * args.world_size * gas}
    engine = getattr(trainer, "deepspeed", None)
    if engine is not None:
        info["deepspeed"] = {"train_batch_size": engine.train_batch_size(),
                             "train_micro_batch_size_per_gpu": engine.train_micro_batch_size_per_gpu(),
                             "gradient_accumulation_steps": engine.gradient_accumulation_steps(),
                             "gradient_clipping": engine.gradient_clipping()}
    return info


def train(recipe: Recipe[TrainRecipe], resume: bool = False) -> dict[str, Any]:
    """Train, save model/adapter + tokenizer + manifest.json into output_dir; return the manifest."""
    import time

    from mlift.records import write_json_atomic
    from mlift.runner import package_versions

    cfg = recipe.cfg
    out = Path(cfg.output_dir)
    checkpoint = latest_checkpoint(out)
    if resume:
        log(f"resuming from {checkpoint}" if checkpoint else f"--resume: no checkpoint in {out}, starting fresh")
    elif checkpoint:
        log(f"{out} has checkpoints (latest {Path(checkpoint).name}) but --resume was not given: starting fresh")
        checkpoint = None
    started = time.time()
    stamp = out / "mlift_recipe.json"
    if resume and checkpoint and stamp.is_file():  # every process checks, so none is left waiting for the others
        old = json.loads(stamp.read_text())
        before = old.get("hash")
        if before != recipe.hash:  # e.g. a changed lr, data or chat template: resuming would mix two runs into one model
            from mlift.fingerprint import changed_files
            from mlift.recipe import RecipeError

            changed = changed_files(old.get("files") or {}, recipe.named_files()) if "files" in old else []
            raise RecipeError(f"--resume: {checkpoint} was made by another recipe (its hash {before}, this one "
                              f"{recipe.hash})" + (f"; files changed since: {'; '.join(changed)}" if changed else "")
                              + f"; use a new output_dir, or delete {out} to start fresh")
    if is_main_process():
        write_json_atomic(stamp, recipe.as_manifest())
    trainer, info = build_trainer(recipe)
    result = trainer.train(resume_from_checkpoint=checkpoint if resume else None)
    trainer.save_model(str(out))  # gathers ZeRO-3 shards; saves the tokenizer (with its chat template) too
    trainer.accelerator.wait_for_everyone()
    manifest: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        saved = check_adapter(out) if cfg.lora else {}
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        manifest = {
            "recipe": recipe.as_manifest(),
            "seed": cfg.seed,
            "command": sys.argv,
            "resumed_from": checkpoint if resume else None,
            "model": {"name_or_path": cfg.model.name_or_path, "lora": cfg.lora is not None, **saved},
            "chat": info["chat"],
            "data": info["data"],
            "world_size": trainer.args.world_size,
            "deepspeed_zero_stage": _zero_stage(trainer),
            "batch": batch_info(trainer),
            "versions": package_versions(),
            "metrics": {**result.metrics, "global_step": trainer.state.global_step,
                        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None},
            "wall_seconds": round(time.time() - started, 2),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json_atomic(out / "manifest.json", manifest)
        log(f"batch: {manifest['batch']}")
        log(f"saved {'adapter' if cfg.lora else 'model'} + tokenizer + manifest.json to {out} "
            f"(step {trainer.state.global_step}, loss {manifest['metrics']['last_loss']})")
    return manifest


# --- Slurm -----------------------------------------------------------------------------------------------------------

def render_sbatch(recipe: Recipe[TrainRecipe], recipe_arg: str, overrides: list[str]) -> str:
    """slurm/train.sbatch rendered with the recipe's Slurm values."""
    import shlex

    import jinja2

    s = recipe.cfg.slurm
    workdir = s.workdir or os.getcwd()
    template = Path(s.template) if s.template else Path(__file__).resolve().parents[1] / "slurm" / "train.sbatch"
    if not template.is_file():
        raise FileNotFoundError(f"sbatch template not found: {template} (set slurm.template)")
    train_args = " ".join(shlex.quote(a) for a in [recipe_arg, *sum((["--set", o] for o in overrides), [])])
    values = {
        "job_name": f"train-{Path(recipe.cfg.output_dir).name}",
        "nodes": s.nodes, "gpus_per_node": s.gpus_per_node, "cpus_per_task": s.cpus_per_task, "mem": s.mem,
        "time": s.time, "partition": s.partition, "account": s.account,
        "gres": s.gres if s.gres is not None else (f"gpu:{s.gpus_per_node}" if s.gpus_per_node else None),
        "accelerate_config": s.accelerate_config, "env_activate": s.env_activate,
        "workdir": workdir, "log_dir": str(Path(workdir, recipe.cfg.output_dir)), "port": s.port, "signal_seconds": s.signal_seconds,
        "extra_sbatch": s.extra_sbatch, "output_dir": recipe.cfg.output_dir, "train_args": train_args,
        "num_processes_per_node": max(s.gpus_per_node, 1), "recipe_hash": recipe.hash,
        "q": shlex.quote,
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(**values)


# --- entry points ----------------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlift.cli import add_recipe_arguments

    add_recipe_arguments(parser, shards=False)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in output_dir (same data order and seed); "
                             "starts fresh when there is none")
    parser.add_argument("--slurm", action="store_true", help="render slurm/train.sbatch for this recipe and submit it")
    parser.add_argument("--dry-run", action="store_true", help="with --slurm (implied): print the sbatch script, submit nothing")


def run(args: argparse.Namespace) -> int:
    recipe = load_train_recipe(args.recipe, args.overrides)
    if args.slurm or args.dry_run:
        script = render_sbatch(recipe, args.recipe, args.overrides)
        if args.dry_run:
            sys.stdout.write(script)
            return 0
        import subprocess
        import tempfile

        # Slurm does not create the --output directory; a missing one loses the log silently
        Path(recipe.cfg.slurm.workdir or os.getcwd(), recipe.cfg.output_dir).mkdir(parents=True, exist_ok=True)

        with tempfile.NamedTemporaryFile("w", suffix=".sbatch", delete=False) as fh:
            fh.write(script)
        done = subprocess.run(["sbatch", "--parsable", fh.name], capture_output=True, text=True)
        if done.returncode:
            print(f"mlift train: sbatch failed: {done.stderr.strip()}", file=sys.stderr)
            return done.returncode
        print(done.stdout.strip())
        return 0
    from mlift.modelpath import check_model

    check_model(recipe.cfg.model.name_or_path, "model.name_or_path")  # here, not in the schema: a sweep's may be remote
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"
    manifest = train(recipe, resume=args.resume)
    if manifest:
        print(json.dumps({"output_dir": recipe.cfg.output_dir, **manifest["metrics"]}, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    from mlift.recipe import RecipeError

    parser = argparse.ArgumentParser(prog="python -m mlift.train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except RecipeError as exc:
        print(f"mlift train: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
