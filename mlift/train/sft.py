"""SFT training with TRL: one entry for a laptop CPU, one GPU, or many nodes.

    mlift train RECIPE [--set k=v] [--fresh]      # resumes its own recipe's checkpoint; --fresh moves old work aside
    accelerate launch --config_file recipes/accelerate/zero3.yaml -m mlift.train RECIPE
    mlift train RECIPE --slurm [--dry-run]       # render (and submit) slurm/train.sbatch with the recipe's values

The recipe names the model, the datasets with weights (mlift.train.data), SFTConfig settings (`sft:`, passed through and
validated against TRL's SFTConfig), optional LoRA, W&B grouping and Slurm resources.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from mlift.fingerprint import ChatTemplateRef
from mlift.recipe import Recipe, Schema
from mlift.train.data import DatasetSource
from mlift.train.fsdp import enable_fsdp_on_cpu, fsdp_summary, save_fsdp_model

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
    signal: str = Field("USR1", pattern=r"^[A-Z0-9]+$",
                        description="sent to the batch script before the time limit: checkpoint, requeue, resume")
    signal_seconds: int = Field(300, ge=10, description="how long before the time limit the signal comes")
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

    from mlift.train.chat import prepare_tokenizer
    from mlift.train.data import build_mixture

    cfg = recipe.cfg
    try:
        args = build_sft_config(recipe)  # first: under accelerate/DeepSpeed it sets up the distributed state
    except ValueError as exc:  # SFTConfig's own cross-field checks (e.g. load_best_model_at_end without evaluation)
        from mlift.recipe import RecipeError

        raise RecipeError(f"{recipe.path}: sft: TRL's SFTConfig refuses these settings: {exc}") from None
    enable_fsdp_on_cpu()  # before SFTTrainer builds its Accelerator
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.name_or_path, revision=cfg.model.revision,
                                              trust_remote_code=cfg.model.trust_remote_code)
    try:
        chat_info = prepare_tokenizer(tokenizer, cfg.model.chat_template, cfg.model.eos_token,
                                      args.assistant_only_loss)
    except ValueError as exc:
        from mlift.recipe import RecipeError

        raise RecipeError(f"{cfg.model.name_or_path}: {exc}") from None
    with args.main_process_first(local=False, desc="load and mix datasets"):  # once per job, not once per node
        dataset, data_info = build_mixture(cfg.data.datasets, cfg.seed, cfg.data.shuffle)
        dataset = dataset.select_columns(["messages"])  # lang/meta stay out of the collator
        if chat_info["loss_mask"] == "template-prefix":
            from mlift.train.chat_masks import trainer_dataset

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


def train(recipe: Recipe[TrainRecipe], fresh: bool = False) -> dict[str, Any]:
    """Train, save model/adapter + tokenizer + manifest.json into output_dir; return the manifest. A checkpoint of the
    same recipe in output_dir is resumed; another recipe's work there is refused unless `fresh` (then moved aside)."""
    import time

    from mlift.records import write_json_atomic
    from mlift.runner.stage import package_versions
    from mlift.train.checkpoints import RUN_STAMP, Preempted, RunCallback, plan_start

    cfg = recipe.cfg
    out = Path(cfg.output_dir)
    action, checkpoint = plan_start(out, recipe.hash, fresh, is_main_process(), recipe.named_files())
    if action == "done":
        log(f"{out} holds this recipe's finished run (manifest.json); nothing to do (--fresh trains again, "
            "moving it aside)")
        return json.loads((out / "manifest.json").read_text())
    log(f"resuming from {checkpoint}" if checkpoint else f"starting at step 0 in {out}")
    started = time.time()
    if is_main_process():
        write_json_atomic(out / RUN_STAMP, recipe.as_manifest())
    trainer, info = build_trainer(recipe)
    run_callback = RunCallback(recipe.hash)
    trainer.add_callback(run_callback)
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if run_callback.preempted_at is not None:
        log(f"stop requested: checkpoint-{run_callback.preempted_at} saved; the same command resumes from it")
        raise Preempted(run_callback.preempted_at)
    if trainer.is_fsdp_enabled:  # sharded checkpoints while training; save_model writes nothing for a sharded dict
        save_fsdp_model(trainer, out)
    else:
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
            "resumed_from": str(checkpoint) if checkpoint else None,
            "model": {"name_or_path": cfg.model.name_or_path, "lora": cfg.lora is not None, **saved},
            "chat": info["chat"],
            "data": info["data"],
            "world_size": trainer.args.world_size,
            "deepspeed_zero_stage": _zero_stage(trainer),
            "fsdp": fsdp_summary(trainer),
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
