"""`mlift sweep`: expand a grid (datasets x models x seeds x override axes) into Slurm jobs and run them.

Job graph per sweep: every dataset is built by a job array over shards (`--shard $TASK/N`) plus one finalize run of
the same command without `--shard` (cross-shard steps, the complete manifest); each (dataset, model, train axes,
seed) is trained after its data (`afterok`), evaluated after training, and one report per model comes last. Every
job writes a completion marker last, so a re-submit skips finished jobs; job ids live in `<out>/sweep_state.json`.
Scripts are rendered from slurm/job.sbatch and are plain bash: `--local` runs them here in dependency order.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from mlift.recipe import Recipe, RecipeError, Schema

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "slurm" / "job.sbatch"
MARKER = "_SUCCESS"
STATE_FILE = "sweep_state.json"
# command -> (module, schema) of the dataset recipe it takes; validated before anything is submitted
DATA_COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("mlift.generate.config", "GenerateRecipe"),
    "mix": ("mlift.mix", "MixRecipe"),
    "baseline translated-alpaca": ("mlift.baselines.translated_alpaca", "TranslatedAlpacaRecipe"),
    "baseline templated": ("mlift.baselines.templated", "TemplatedRecipe"),
    "baseline sphinx": ("mlift.baselines.sphinx", "SphinxRecipe"),
}
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "REQUEUE_HOLD"}
FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


# --- recipe ----------------------------------------------------------------------------------------------------------

class Resources(Schema):
    gpus: int = Field(0, ge=0, description="GPUs per job; rendered as slurm.gres (a cluster without GPUs: 0)")
    cpus: int | None = Field(None, ge=1)
    mem: str | None = None
    time: str | None = None


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
    env: dict[str, str] = Field(default_factory=lambda: {
        "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "${SLURM_CPUS_PER_TASK:-1}", "TOKENIZERS_PARALLELISM": "false",
        "WANDB_MODE": "offline"})
    template: str | None = Field(None, description="sbatch template (default: slurm/job.sbatch)")


class DatasetSpec(Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    command: str | None = Field(None, description=f"one of {sorted(DATA_COMMANDS)}; null with `path`")
    recipe: str | None = None
    set: list[str] = Field(default_factory=list, description="--set overrides of the dataset recipe")
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
    report: ReportSpec = Field(default_factory=ReportSpec)
    slurm: SlurmOpts = Field(default_factory=SlurmOpts)
    wandb: WandbSweep | None = Field(None, description="W&B runs grouped by the sweep's name, job_type = the stage; "
                                                       "slurm.env's WANDB_MODE (offline by default) applies")


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe[SweepRecipe]:
    from mlift.recipe import load_recipe

    return load_recipe(path, SweepRecipe, overrides)


# --- expansion -------------------------------------------------------------------------------------------------------

@dataclass
class Job:
    name: str                      # unique in the sweep, filesystem-safe
    kind: str                      # data | finalize | train | eval | report
    command: str                   # shell; `$TASK` is the array index
    out: str                       # what the job produces
    deps: list[str] = field(default_factory=list)
    array: int | None = None       # number of array tasks
    resources: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    seed: int | None = None
    model: str | None = None

    def markers(self) -> list[Path]:
        if self.array:
            return [Path(self.out, f"{MARKER}.task-{i}") for i in range(self.array)]
        return [Path(self.out, MARKER)]

    @property
    def hash(self) -> str:
        """Of what the job runs: a marker left by a different command (an edited recipe) does not count."""
        import hashlib

        return hashlib.sha256(f"{self.command}\n{self.out}\n{self.array}".encode()).hexdigest()[:16]

    def complete(self) -> bool:
        return all(_marker_hash(p) == self.hash for p in self.markers())


def _marker_hash(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("hash")
    except (OSError, ValueError, AttributeError):
        return None


def _grid(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))] or [{}]


def _point_label(base: str, fmt: str | None, point: dict[str, Any]) -> str:
    short = {k.rsplit(".", 1)[-1]: v for k, v in point.items()}
    if fmt:
        label = fmt.format(**short)
    else:
        label = "-".join([base, *(f"{k}{v}" for k, v in short.items())])
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label)


def _assignments(point: dict[str, Any]) -> list[str]:
    """A grid point as `key=value` overrides (non-strings as JSON)."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in point.items()]


def _sets(overrides: list[str]) -> list[str]:
    return sum((["--set", o] for o in overrides), [])


def _cmd(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def _validate_dataset(spec: DatasetSpec, overrides: list[str]) -> None:
    import importlib

    from mlift.recipe import load_recipe

    module, cls = DATA_COMMANDS[spec.command]  # type: ignore[index]
    load_recipe(spec.recipe, getattr(importlib.import_module(module), cls), overrides)


def _train_model(recipe: SweepRecipe, model: ModelSpec, point: dict[str, Any], validate: bool) -> tuple[str, bool]:
    """(base model path, uses LoRA) of the train recipe as this model/grid point resolves it. Read from the YAML, so
    --no-validate renders the very same commands (and job hashes); validation loads the full schema (imports TRL)."""
    import yaml

    from mlift.recipe import apply_override, parse_override

    overrides = [*recipe.train.set, *model.set, *_assignments(point)]
    if validate:
        from mlift.train import load_train_recipe

        load_train_recipe(recipe.train.recipe, overrides)
    try:
        data = yaml.safe_load(Path(recipe.train.recipe).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"train.recipe {recipe.train.recipe}: {exc}") from exc
    for item in overrides:
        apply_override(data, *parse_override(item))
    name = (data.get("model") or {}).get("name_or_path")
    if not name:
        raise RecipeError(f"train.recipe {recipe.train.recipe}: no model.name_or_path")
    return str(name), data.get("lora") is not None


def expand(recipe: Recipe[SweepRecipe], validate: bool = True) -> list[Job]:
    """The sweep's jobs in dependency order (parents first)."""
    cfg = recipe.cfg
    out = Path(cfg.output_dir).resolve()
    jobs: list[Job] = []
    arms: list[tuple[str, str | None, list[str]]] = []   # (label, finalize job or None, train --set data.datasets)
    labels: set[str] = set()
    built: dict[str, str] = {}   # dataset label -> its last build job
    for spec in cfg.datasets:
        if (spec.path is None) == (spec.command is None):
            raise RecipeError(f"{recipe.path}: dataset {spec.name}: give either command + recipe or path")
        if spec.command and not spec.recipe:
            raise RecipeError(f"{recipe.path}: dataset {spec.name}: command {spec.command!r} needs a recipe")
        for point in _grid(spec.grid):
            label = _point_label(spec.name, spec.label, point) if point else spec.name
            if label in labels:
                raise RecipeError(f"{recipe.path}: dataset label {label!r} appears twice (set `label`)")
            labels.add(label)
            if spec.path is not None:
                arms.append((label, None, [_cmd("--set", f"data.datasets=[{json.dumps({'path': spec.path})}]")]))
                continue
            data_out = out / "data" / label
            for name in spec.after:
                if name not in built:
                    raise RecipeError(f"{recipe.path}: dataset {spec.name}: after {name!r}: not a built dataset listed "
                                      f"earlier (known: {sorted(built)})")
            after = [built[name] for name in spec.after]
            sets = [*spec.set, *_assignments(point), f"output_dir={data_out}"]
            if validate:
                _validate_dataset(spec, sets)
            base = ["mlift", *spec.command.split(), spec.recipe, *_sets(sets)]  # type: ignore[union-attr]
            res = spec.resources.model_dump()
            last = f"data-{label}"
            if spec.shards > 1:
                jobs.append(Job(f"data-{label}", "data", _cmd(*base, "--no-progress") + f' --shard "$TASK/{spec.shards}"',
                                str(data_out / "_sweep" / "shards"), deps=after, array=spec.shards, resources=res,
                                label=label))
                last = f"final-{label}"
                jobs.append(Job(last, "finalize", _cmd(*base, "--no-progress"), str(data_out), deps=[f"data-{label}"],
                                resources=res, label=label))
            else:
                jobs.append(Job(last, "data", _cmd(*base, "--no-progress"), str(data_out), deps=after, resources=res,
                                label=label))
            built[label] = last
            # The train job lists the built dataset's shard dirs at run time (languages are known only then).
            src = f'--set "data.datasets=$(python -m mlift.sweep data-sources {shlex.quote(str(data_out))})"'
            if spec.train:
                arms.append((label, last, [src]))
    train_points = _grid(cfg.train.grid)
    for model in cfg.models:
        evals: list[tuple[str, int, str, str]] = []
        for point in train_points:
            base_model, lora = _train_model(cfg, model, point, validate)
            suffix = _point_label("", None, point) if point else ""
            mtag = "" if len(cfg.models) == 1 else f"{model.name}/"
            for label, data_job, data_sets in arms:
                arm = label + suffix
                for seed in cfg.seeds:
                    run = f"{mtag}{arm}/seed{seed}"
                    tag = run.replace("/", "-")
                    train_out = out / "train" / run
                    train_sets = [*cfg.train.set, *model.set, *_assignments(point), f"output_dir={train_out}",
                                  f"seed={seed}", *_wandb_sets(cfg)]
                    cmd = " ".join([cfg.train.launcher, _cmd(cfg.train.recipe, *_sets(train_sets)), *data_sets,
                                    "--resume --no-progress"])
                    jobs.append(Job(f"train-{tag}", "train", cmd, str(train_out), deps=[data_job] if data_job else [],
                                    resources=cfg.train.resources.model_dump(), label=arm, seed=seed, model=model.name))
                    if cfg.eval is None:
                        continue
                    eval_out = out / "eval" / run
                    model_args = ["--model", base_model, "--adapter", str(train_out)] if lora else ["--model", str(train_out)]
                    cmd = _cmd("mlift", "eval", *model_args, "--suite", cfg.eval.suite, "--out", str(eval_out),
                               *cfg.eval.args)
                    jobs.append(Job(f"eval-{tag}", "eval", cmd, str(eval_out), deps=[f"train-{tag}"],
                                    resources=cfg.eval.resources.model_dump(), label=arm, seed=seed, model=model.name))
                    evals.append((arm, seed, str(eval_out), f"eval-{tag}"))
        if cfg.eval is not None and cfg.report.enabled and evals:
            report_out = out / "report" / (model.name if len(cfg.models) > 1 else "")
            cmd = _cmd("mlift", "report", *(f"{a}@{s}={d}" for a, s, d, _ in evals), "--out", str(report_out),
                       *(["--baseline", cfg.report.baseline] if cfg.report.baseline else []), *cfg.report.args)
            name = "report" if len(cfg.models) == 1 else f"report-{model.name}"
            jobs.append(Job(name, "report", cmd, str(report_out), deps=[e[3] for e in evals],
                            resources=cfg.report.resources.model_dump(), model=model.name))
    if cfg.report.baseline and cfg.report.baseline not in {j.label for j in jobs if j.kind == "eval"}:
        raise RecipeError(f"{recipe.path}: report.baseline {cfg.report.baseline!r} is not a dataset label "
                          f"(labels: {sorted({j.label for j in jobs if j.kind == 'eval'})})")
    return jobs


# --- rendering -------------------------------------------------------------------------------------------------------

def default_setup() -> str:
    return f"source {shlex.quote(str(REPO / '.venv' / 'bin' / 'activate'))}"


def log_pattern(cfg: SweepRecipe, job: Job, local: bool = False) -> str:
    logs = Path(cfg.output_dir).resolve() / "logs"
    if local:
        return str(logs / (f"{job.name}.local-{{task}}.log" if job.array else f"{job.name}.local.log"))
    return str(logs / (f"{job.name}.%A_%a.log" if job.array else f"{job.name}.%j.log"))


def _wandb_sets(cfg: SweepRecipe) -> list[str]:
    """Train overrides that put its W&B run beside the sweep's other jobs (the sweep wins over the train recipe)."""
    if not cfg.wandb:
        return []
    return ["sft.report_to=[wandb]", f"wandb.project={cfg.wandb.project}", f"wandb.group={cfg.name}",
            *([f"wandb.entity={cfg.wandb.entity}"] if cfg.wandb.entity else [])]


def job_env(cfg: SweepRecipe) -> dict[str, str]:
    """slurm.env, plus the W&B project and the sweep's name as the group when the sweep has a `wandb:` section."""
    env = dict(cfg.slurm.env)
    if cfg.wandb:
        env.update({"WANDB_PROJECT": cfg.wandb.project, "WANDB_RUN_GROUP": cfg.name,
                    **({"WANDB_ENTITY": cfg.wandb.entity} if cfg.wandb.entity else {})})
    return env


def render(recipe: Recipe[SweepRecipe], job: Job) -> str:
    import jinja2

    cfg = recipe.cfg
    s = cfg.slurm
    res = job.resources
    template = Path(s.template) if s.template else TEMPLATE
    gres = s.gres.format(n=res["gpus"]) if s.gres and res.get("gpus") else None
    values = {
        "sweep": cfg.name, "name": job.name, "kind": job.kind, "recipe_hash": recipe.hash,
        "job_name": f"{cfg.name}:{job.name}"[:120], "log": log_pattern(cfg, job),
        "workdir": str(Path(s.workdir or os.getcwd()).resolve()), "cpus": res.get("cpus") or s.cpus,
        "time": res.get("time") or s.time, "mem": res.get("mem") or s.mem, "array": job.array, "gres": gres,
        "partition": s.partition, "account": s.account, "extra_sbatch": s.extra_sbatch,
        "setup": s.setup or default_setup(), "env": job_env(cfg), "out": job.out,
        "marker_name": f"{MARKER}.task-${{TASK}}" if job.array else MARKER, "command": job.command,
        "job_hash": job.hash, "q": shlex.quote,
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(**values)


def write_scripts(recipe: Recipe[SweepRecipe], jobs: list[Job]) -> dict[str, Path]:
    scripts = Path(recipe.cfg.output_dir).resolve() / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    paths = {}
    for job in jobs:
        path = scripts / f"{job.name.replace('/', '-')}.sbatch"
        path.write_text(render(recipe, job), encoding="utf-8")
        paths[job.name] = path
    return paths


def write_manifest(recipe: Recipe[SweepRecipe], jobs: list[Job], mode: str) -> None:
    from mlift.records import write_json_atomic

    write_json_atomic(Path(recipe.cfg.output_dir).resolve() / "manifest.json", {
        "recipe": recipe.as_manifest(), "hash": recipe.hash, "seeds": recipe.cfg.seeds, "mode": mode,
        "jobs": [asdict(j) for j in jobs]})


# --- state -----------------------------------------------------------------------------------------------------------

def _state_path(recipe: Recipe[SweepRecipe]) -> Path:
    return Path(recipe.cfg.output_dir).resolve() / STATE_FILE


def load_state(recipe: Recipe[SweepRecipe]) -> dict[str, Any]:
    path = _state_path(recipe)
    return json.loads(path.read_text()) if path.is_file() else {"jobs": {}}


def save_state(recipe: Recipe[SweepRecipe], state: dict[str, Any]) -> None:
    from mlift.records import write_json_atomic

    write_json_atomic(_state_path(recipe), state)


def slurm_tasks(job_id: str) -> list[dict[str, str]]:
    """`scontrol -o show job ID` (one line per array task) as dicts; [] when Slurm no longer knows the job."""
    done = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], capture_output=True, text=True)
    if done.returncode:
        return []
    rows = []
    for line in done.stdout.splitlines():
        row = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))
        if row:
            rows.append(row)
    return rows


def job_state(job: Job, entry: dict[str, Any] | None) -> tuple[str, list[dict[str, str]]]:
    """('done'|'active'|'failed'|'not submitted'|'unknown', failed tasks with their log paths)."""
    if job.complete():
        return "done", []
    if not entry:
        return "not submitted", []
    if entry.get("local"):
        bad = [{"task": t, "log": v["log"], "state": f"exit {v['rc']}"} for t, v in entry["tasks"].items() if v["rc"]]
        return ("failed", bad) if bad else ("unknown", [])
    rows = slurm_tasks(entry["id"])
    if not rows:
        return "unknown", []
    states = {r.get("JobState", "") for r in rows}
    bad = [{"task": r.get("ArrayTaskId", "-"), "log": r.get("StdOut", entry.get("log", "")), "state": r["JobState"],
            "reason": r.get("Reason", "")} for r in rows if r.get("JobState") in FAILED]
    if bad:
        return "failed", bad
    if states & ACTIVE:
        return "active", []
    return "unknown", []  # COMPLETED without a marker: the job ran an old script, or its marker was removed


# --- running ---------------------------------------------------------------------------------------------------------

def submit(recipe: Recipe[SweepRecipe], jobs: list[Job], scripts: dict[str, Path],
           echo=print) -> dict[str, str | None]:
    """sbatch every incomplete job, parents first; a job still queued/running from the last submit is reused."""
    state = load_state(recipe)
    Path(recipe.cfg.output_dir, "logs").resolve().mkdir(parents=True, exist_ok=True)  # Slurm does not create it
    ids: dict[str, str | None] = {}
    for job in jobs:
        entry = state["jobs"].get(job.name)
        if job.complete():
            ids[job.name] = None
            echo(f"skip   {job.name} (complete)")
            continue
        if entry and not entry.get("local") and job_state(job, entry)[0] == "active":
            ids[job.name] = entry["id"]
            echo(f"keep   {job.name} (job {entry['id']} still queued/running)")
            continue
        parents = [ids[d] for d in job.deps if ids.get(d)]
        cmd = ["sbatch", "--parsable", *([f"--dependency=afterok:{':'.join(parents)}"] if parents else []),
               str(scripts[job.name])]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            save_state(recipe, state)
            raise RuntimeError(f"sbatch failed for {job.name}: {done.stderr.strip()}")
        job_id = done.stdout.strip().split(";")[0]
        ids[job.name] = job_id
        state["jobs"][job.name] = {"id": job_id, "script": str(scripts[job.name]), "deps": parents,
                                   "log": log_pattern(recipe.cfg, job), "submitted": time.time()}
        echo(f"submit {job.name} -> {job_id}" + (f" (after {', '.join(parents)})" if parents else ""))
    save_state(recipe, state)
    return ids


def run_local(recipe: Recipe[SweepRecipe], jobs: list[Job], scripts: dict[str, Path], echo=print) -> bool:
    """Run the scripts with bash here, parents first; the dependents of a failed job are skipped."""
    state = load_state(recipe)
    Path(recipe.cfg.output_dir, "logs").resolve().mkdir(parents=True, exist_ok=True)
    failed: set[str] = set()
    for job in jobs:
        if job.complete():
            echo(f"skip   {job.name} (complete)")
            continue
        if any(d in failed for d in job.deps):
            failed.add(job.name)
            echo(f"skip   {job.name} (a dependency failed)")
            continue
        tasks = {}
        for task in range(job.array or 1):
            log = log_pattern(recipe.cfg, job, local=True).format(task=task)
            env = {**os.environ, "SLURM_CPUS_PER_TASK": str(job.resources.get("cpus") or recipe.cfg.slurm.cpus)}
            if job.array:
                env["SLURM_ARRAY_TASK_ID"] = str(task)
            started = time.time()
            with open(log, "w") as fh:
                rc = subprocess.run(["bash", str(scripts[job.name])], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                    cwd=recipe.cfg.slurm.workdir or os.getcwd()).returncode
            tasks[str(task)] = {"rc": rc, "log": log, "seconds": round(time.time() - started, 1)}
            echo(f"{'ok  ' if rc == 0 else 'FAIL'}   {job.name}" + (f"[{task}]" if job.array else "")
                 + f" ({tasks[str(task)]['seconds']} s)" + ("" if rc == 0 else f" log: {log}"))
        state["jobs"][job.name] = {"local": True, "tasks": tasks, "script": str(scripts[job.name])}
        save_state(recipe, state)
        if any(t["rc"] for t in tasks.values()):
            failed.add(job.name)
    return not failed


def wait(job_ids: list[str], timeout: float, poll: float = 0.5) -> bool:
    """Poll squeue until none of the jobs is queued or running; False on timeout."""
    deadline = time.time() + timeout
    ids = [i for i in job_ids if i]
    while ids and time.time() < deadline:
        done = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
        if done.returncode == 0 and not done.stdout.strip():
            return True
        time.sleep(poll)
    return not ids


def status(recipe: Recipe[SweepRecipe], jobs: list[Job], echo=print) -> dict[str, int]:
    """Print one line per job and every failed task with its log; counts per state."""
    state = load_state(recipe)
    counts: dict[str, int] = {}
    for job in jobs:
        entry = state["jobs"].get(job.name)
        st, bad = job_state(job, entry)
        counts[st] = counts.get(st, 0) + 1
        jid = "local" if entry and entry.get("local") else (entry or {}).get("id", "-")
        echo(f"{st:<14} {job.name:<40} {jid}")
        for b in bad:
            echo(f"    task {b['task']}: {b['state']} {b.get('reason', '')} log: {b['log']}")
    echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return counts


# --- helper for train jobs -------------------------------------------------------------------------------------------

def data_sources(run_dir: str | Path) -> list[dict[str, str]]:
    """The shard dirs of a built dataset (from its manifest's data_files glob), as train `data.datasets` entries."""
    import glob

    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    pattern = manifest.get("data_files") or (manifest.get("dataset") or {}).get("data_files")
    if not pattern:
        raise RuntimeError(f"{run_dir}/manifest.json names no data_files")
    dirs = sorted({str(Path(f).parent.resolve()) for f in glob.glob(pattern)})
    if not dirs:
        raise RuntimeError(f"{run_dir}: no files match {pattern}")
    return [{"path": d} for d in dirs]


if __name__ == "__main__":
    # `python -m mlift.sweep data-sources DIR`: used inside train jobs
    if len(sys.argv) == 3 and sys.argv[1] == "data-sources":
        print(json.dumps(data_sources(sys.argv[2])))
        raise SystemExit(0)
    print("usage: python -m mlift.sweep data-sources RUN_DIR", file=sys.stderr)
    raise SystemExit(2)
