"""The sweep recipe (pydantic, unknown keys forbidden) and the table of data commands a sweep can build with."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from mlift.recipe import Schema


@dataclass(frozen=True)
class DataCommand:
    """A command that builds a dataset: its recipe schema ("module:Class") and, for a pipeline with global steps,
    where its ordered steps are declared ("module:attr", a list of (name, is_global)); a sharded build of such a
    command is chained at each global step (array -> global -> array ...), see mlift/sweep/graph.py."""

    schema: str
    steps: str | None = None


# The one table of data commands: `mlift <command> RECIPE`; validated before anything is submitted.
DATA_COMMANDS: dict[str, DataCommand] = {
    "generate": DataCommand("mlift.generate.config:GenerateRecipe", steps="mlift.generate.config:STEP_KINDS"),
    "mix": DataCommand("mlift.data.mix:MixRecipe"),
    "baseline translated-alpaca": DataCommand("mlift.baselines.translated_alpaca:TranslatedAlpacaRecipe"),
    "baseline templated": DataCommand("mlift.baselines.templated:TemplatedRecipe"),
    "baseline sphinx": DataCommand("mlift.baselines.sphinx:SphinxRecipe"),
}


def resolve(ref: str) -> Any:
    """"module:attr" -> the object (imports the module)."""
    import importlib

    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


class Resources(Schema):
    gpus: int = Field(0, ge=0, description="GPUs per job; rendered as slurm.gres (a cluster without GPUs: 0)")
    cpus: int | None = Field(None, ge=1)
    mem: str | None = None
    time: str | None = None


ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_env() -> dict[str, str]:
    # No HF_HUB_OFFLINE here: real sweeps stream hub data and load hub models (a rehearsal sets it in its section).
    # OMP_NUM_THREADS follows the job's CPUs (set in the template; values here are literal, never expanded).
    return {"TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "offline"}


class SlurmOpts(Schema):
    setup: str | None = Field(None, description="shell line(s) that activate the environment inside each job "
                                                "(default: source <repo>/.venv/bin/activate)")
    workdir: str | None = Field(None, description="jobs cd here; recipe paths are relative to it (default: cwd)")
    partition: str | None = None
    account: str | None = None
    time: str = "04:00:00"
    cpus: int = Field(1, ge=1)
    mem: str | None = None
    gres: str | None = Field("gpu:{n}", description="GPU request pattern; null drops --gres (clusters that refuse it)")
    extra_sbatch: list[str] = Field(default_factory=list, description="more #SBATCH lines, e.g. --qos=high")
    env: dict[str, str] = Field(default_factory=default_env, description="exported in every job; values literal")
    template: str | None = Field(None, description="sbatch template (default: slurm/job.sbatch)")
    max_array_size: int | None = Field(None, ge=1, description="tasks per array job; larger arrays are split into "
                                       "several (default: MaxArraySize from `scontrol show config`, else 1001)")
    array_throttle: int | None = Field(None, ge=1, description="at most this many tasks of an array run at once (%N)")

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not ENV_KEY.match(k)]
        if bad:
            raise ValueError(f"env keys must match {ENV_KEY.pattern}: {bad}")
        return value


class DatasetSpec(Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    command: str | None = Field(None, description=f"one of {sorted(DATA_COMMANDS)}; null with `path`")
    recipe: str | None = None
    set: list[str] = Field(default_factory=list, description="--set overrides of the dataset recipe; {output_dir} is "
                           "the sweep's output_dir, e.g. mixture.source.path={output_dir}/data/pool")
    shards: int = Field(1, ge=1, description="array tasks (`--shard i/N`); >1 adds a finalize job")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="override axes, e.g. mixture.percent: [0, 1]")
    label: str | None = Field(None, description="label per grid point, e.g. 'pinch-P{percent}' (last key segment)")
    path: str | None = Field(None, description="a ready dataset (file, mlift dir or hub id): nothing to build")
    train: bool = Field(True, description="false: only a source of other datasets (built, never trained on)")
    after: list[str] = Field(default_factory=list, description="labels of datasets (listed earlier) this one is built "
                                                               "from, e.g. a pinch mix after its translated source")
    resources: Resources = Field(default_factory=Resources)

    @field_validator("command")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in DATA_COMMANDS:
            raise ValueError(f"unknown dataset command {value!r} (expected one of {sorted(DATA_COMMANDS)})")
        return value


class ModelSpec(Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    set: list[str] = Field(default_factory=list, description="train recipe overrides, e.g. model.name_or_path=...")


class TrainSpec(Schema):
    recipe: str
    set: list[str] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="override axes of the train recipe")
    launcher: str = Field("mlift train", description="e.g. 'accelerate launch --config_file X -m mlift.train'")
    resources: Resources = Field(default_factory=lambda: Resources(gpus=1))


class EvalSpec(Schema):
    suite: str
    args: list[str] = Field(default_factory=list, description="more `mlift eval` flags, e.g. [--limit, '2']")
    resources: Resources = Field(default_factory=lambda: Resources(gpus=1))


class AnswerSpec(Schema):
    """Every trained model answers an instruction eval set (`mlift answer`), after its training."""

    instructions: str = Field("shipped", description="JSONL or dir of <lang>.jsonl (id, lang, instruction [, input])")
    args: list[str] = Field(default_factory=list, description="more `mlift answer` flags, e.g. [--max-new-tokens, '512']")
    resources: Resources = Field(default_factory=lambda: Resources(gpus=1))


class JudgeSpec(Schema):
    """Pinch's evaluation: each non-reference model's answers in language L vs the answers of the model tuned only on
    L (same model, train point and seed), both orders; one judge job per model against all its references."""

    recipe: str = Field(description="judge recipe (judge LLM, prompt, seed); the sweep sets output_dir, model_a and "
                                    "reference_by_lang")
    reference: str = Field(description="label of the reference arm of a language, e.g. 'mono-{lang}'")
    langs: list[str] = Field(min_length=1, description="languages judged, as they appear in `reference`")
    set: list[str] = Field(default_factory=list, description="more --set overrides of the judge recipe")
    resources: Resources = Field(default_factory=lambda: Resources(gpus=1))


class ReportSpec(Schema):
    enabled: bool = True
    baseline: str | None = Field(None, description="dataset label that deltas are computed against")
    args: list[str] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)


class WandbSweep(Schema):
    project: str = Field(description="every job logs here: data builds, train (report_to wandb), eval, report")
    entity: str | None = None


class SweepRecipe(Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    output_dir: str
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    datasets: list[DatasetSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(default_factory=lambda: [ModelSpec(name="model")], min_length=1)
    train: TrainSpec
    eval: EvalSpec | None = None
    answer: AnswerSpec | None = None
    judge: JudgeSpec | None = Field(None, description="needs answer:")
    report: ReportSpec = Field(default_factory=ReportSpec)
    slurm: SlurmOpts = Field(default_factory=SlurmOpts)
    wandb: WandbSweep | None = Field(None, description="W&B runs grouped by the sweep's name, job_type = the stage; "
                                                       "slurm.env's WANDB_MODE (offline by default) applies")
    rehearsal: dict[str, Any] | None = Field(None, description="the sweep in miniature (`--rehearse`): a partial sweep "
                                                               "merged over this one; see mlift/sweep/rehearsal.py")

    @field_validator("rehearsal")
    @classmethod
    def _rehearsal_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        allowed = set(cls.model_fields) - {"name", "rehearsal"} | {"hub"}  # hub: see mlift/sweep/rehearsal.py
        bad = sorted(set(value or {}) - allowed)
        if bad:
            raise ValueError(f"unknown key(s) {bad} (allowed: {sorted(allowed)})")
        return value


def grid_points(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))] or [{}]


def point_label(base: str, fmt: str | None, point: dict[str, Any]) -> str:
    short = {k.rsplit(".", 1)[-1]: v for k, v in point.items()}
    if fmt:
        label = fmt.format(**short)
    else:
        label = "-".join([base, *(f"{k}{v}" for k, v in short.items())])
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
