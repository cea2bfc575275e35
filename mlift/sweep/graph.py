"""Grid expansion -> the job DAG. The one place where a sweep's jobs and their `afterok` edges are decided.

Per built dataset (grid point): its data jobs (`data_jobs`: one job, or a job array over shards + a finalize run);
per (model, train grid point, arm, seed): a train job after the arm's data (`train_job`), an eval job after it
(`eval_job`); per model one report after all its evals (`report_job`). A new job kind is one more small function
that appends Jobs with their deps here.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlift.recipe import Recipe, RecipeError
from mlift.sweep.jobs import Job, file_digest, named_inputs
from mlift.sweep.schema import DATA_COMMANDS, DatasetSpec, ModelSpec, SweepRecipe, grid_points, point_label, resolve


def assignments(point: dict[str, Any]) -> list[str]:
    """A grid point as `key=value` overrides (non-strings as JSON)."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in point.items()]


def _sets(overrides: list[str]) -> list[str]:
    return sum((["--set", o] for o in overrides), [])


@dataclass
class Arm:
    """A dataset that is trained on: its label, the job that completes it (None: a ready path) and the train flags."""

    label: str
    data_job: str | None
    data_flags: list[str]
    inputs: list[str] = field(default_factory=list)  # a ready dataset: its files' content


@dataclass
class Graph:
    recipe: Recipe[SweepRecipe]
    validate: bool
    jobs: list[Job] = field(default_factory=list)
    arms: list[Arm] = field(default_factory=list)
    built: dict[str, str] = field(default_factory=dict)   # dataset label -> the job that completes it
    by_name: dict[str, Job] = field(default_factory=dict)
    loaded: dict[str, tuple[str, Any]] = field(default_factory=dict)  # label -> (command, validated recipe)

    @property
    def cfg(self) -> SweepRecipe:
        return self.recipe.cfg

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir).resolve()

    def add(self, job: Job) -> str:
        """Append a job (its parents are already in); its hash then covers its parents' hashes, so a changed
        dataset recipe reruns the data, and the train, eval and report after it, and nothing else."""
        if job.name in self.by_name:
            raise RecipeError(f"{self.recipe.path}: two jobs named {job.name!r}")
        job.inputs = [*job.inputs, *(f"after:{self.by_name[d].hash}" for d in job.deps)]
        self.jobs.append(job)
        self.by_name[job.name] = job
        return job.name


# --- data ------------------------------------------------------------------------------------------------------------

def _validate_dataset(g: Graph, spec: DatasetSpec, label: str, overrides: list[str]) -> None:
    """Load the dataset recipe with its overrides (schema errors name the recipe and key); a mix is checked against
    the languages its `after:` pools produce."""
    from mlift.recipe import load_recipe
    from mlift.sweep.validate import check_mix_languages

    try:
        cfg = load_recipe(spec.recipe, resolve(DATA_COMMANDS[spec.command].schema), overrides).cfg  # type: ignore[index]
    except RecipeError as exc:
        raise RecipeError(f"{g.recipe.path}: dataset {label}: {exc}") from None
    g.loaded[label] = (spec.command, cfg)  # type: ignore[assignment]
    if spec.command == "mix":
        check_mix_languages(g.recipe.path, label, cfg, {a: g.loaded[a] for a in spec.after if a in g.loaded})


def in_sweep(out: Path, sets: list[str]) -> list[str]:
    """`{output_dir}` in a `set:` value is the sweep's output directory (resolved), so a path to an earlier dataset
    ({output_dir}/data/pool) follows `--set output_dir=...` and the rehearsal's own output_dir."""
    return [s.replace("{output_dir}", str(out)) for s in sets]


def phases(command: str) -> list[tuple[bool, list[str]]]:
    """The command's steps cut at its global steps: [(is_global, steps)], e.g. generate ->
    [(F, [fragments]), (T, [dedup]), (F, [to_english, instruct, score]), (T, [select]), (F, [to_target])];
    [] for a command without global steps (its shards run as one array)."""
    ref = DATA_COMMANDS[command].steps
    if ref is None:
        return []
    out: list[tuple[bool, list[str]]] = []
    for step, is_global in resolve(ref):
        if is_global or not out or out[-1][0]:
            out.append((bool(is_global), [step]))
        else:
            out[-1][1].append(step)
    return out


def data_jobs(g: Graph, spec: DatasetSpec, label: str, point: dict[str, Any]) -> str:
    """The jobs that build one dataset; returns the name of the job that completes it.

    One shard: one job. N shards: a job array (`--shard $TASK/N`), then a finalize run without --shard (cross-shard
    work, the manifest). A command with global steps is chained at each of them: an array runs the map steps up to
    the next global step (`--steps a,b`), one job runs the global step over all shards, and so on, each `afterok`
    on the one before, then finalize."""
    data_out = g.out / "data" / label
    for name in spec.after:
        if name not in g.built:
            raise RecipeError(f"{g.recipe.path}: dataset {spec.name}: after {name!r}: not a built dataset listed "
                              f"earlier (known: {sorted(g.built)})")
    after = [g.built[name] for name in spec.after]
    sets = [*in_sweep(g.out, spec.set), *assignments(point), f"output_dir={data_out}"]
    if g.validate:
        _validate_dataset(g, spec, label, sets)
    base = ["mlift", *spec.command.split(), spec.recipe, *_sets(sets), "--no-progress"]  # type: ignore[union-attr]
    res = spec.resources.model_dump()
    schema = resolve(DATA_COMMANDS[spec.command].schema)  # type: ignore[index]
    inputs = [file_digest(spec.recipe), *named_inputs(g.out, schema, spec.recipe, sets)]
    common = {"resources": res, "label": label, "inputs": inputs, "root": str(data_out)}
    if spec.shards == 1:
        return g.add(Job(f"data-{label}", "data", shlex.join(base), str(data_out), deps=after, **common))
    shard = f' --shard "$TASK/{spec.shards}"'
    chain = phases(spec.command) or [(False, [])]  # type: ignore[arg-type]
    deps = after
    for is_global, steps in chain:
        flags = ["--steps", ",".join(steps)] if steps else []
        first = steps[0] if steps else "shards"
        if is_global:
            job = Job(f"global-{label}-{first}", "global", shlex.join([*base, *flags]), str(data_out / "_sweep" / first),
                      deps=deps, **common)
        else:
            name = f"data-{label}" if not steps else f"data-{label}-{first}"
            job = Job(name, "data", shlex.join([*base, *flags]) + shard, str(data_out / "_sweep" / first), deps=deps,
                      array=spec.shards, **common)
        deps = [g.add(job)]
    return g.add(Job(f"final-{label}", "finalize", shlex.join(base), str(data_out), deps=deps, **common))


def datasets(g: Graph) -> None:
    labels: set[str] = set()
    for spec in g.cfg.datasets:
        if (spec.path is None) == (spec.command is None):
            raise RecipeError(f"{g.recipe.path}: dataset {spec.name}: give either command + recipe or path")
        if spec.command and not spec.recipe:
            raise RecipeError(f"{g.recipe.path}: dataset {spec.name}: command {spec.command!r} needs a recipe")
        for point in grid_points(spec.grid):
            label = point_label(spec.name, spec.label, point) if point else spec.name
            if label in labels:
                raise RecipeError(f"{g.recipe.path}: dataset label {label!r} appears twice (set `label`)")
            labels.add(label)
            if spec.path is not None:
                from mlift.fingerprint import Reads, fingerprint

                ready = fingerprint(spec.path, Reads(files="mlift.data.conversations:local_files"))
                g.arms.append(Arm(label, None, [shlex.join(["--set", f"data.datasets=[{json.dumps({'path': spec.path})}]"])],
                                  [f"dataset={ready['sha256']}"]))
                continue
            last = data_jobs(g, spec, label, point)
            g.built[label] = last
            if spec.train:
                # The train job lists the built dataset's shard dirs at run time (languages are known only then).
                src = shlex.quote(str(g.out / "data" / label))
                g.arms.append(Arm(label, last, [f'--set "data.datasets=$(python -m mlift.sweep data-sources {src})"']))


# --- train / eval / report -------------------------------------------------------------------------------------------

def train_model(cfg: SweepRecipe, model: ModelSpec, point: dict[str, Any], validate: bool) -> tuple[str, bool]:
    """(base model path, uses LoRA) of the train recipe as this model/grid point resolves it. Read from the YAML, so
    --no-validate renders the very same commands (and job hashes); validation loads the full schema (imports TRL)."""
    import yaml

    from mlift.recipe import apply_override, parse_override

    overrides = [*in_sweep(Path(cfg.output_dir).resolve(), [*cfg.train.set, *model.set]), *assignments(point)]
    if validate:
        from mlift.train.sft import load_train_recipe

        load_train_recipe(cfg.train.recipe, overrides)
    try:
        data = yaml.safe_load(Path(cfg.train.recipe).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"train.recipe {cfg.train.recipe}: {exc}") from exc
    for item in overrides:
        apply_override(data, *parse_override(item))
    name = (data.get("model") or {}).get("name_or_path")
    if not name:
        raise RecipeError(f"train.recipe {cfg.train.recipe}: no model.name_or_path")
    return str(name), data.get("lora") is not None


def wandb_sets(cfg: SweepRecipe) -> list[str]:
    """Train overrides that put its W&B run beside the sweep's other jobs (the sweep wins over the train recipe)."""
    if not cfg.wandb:
        return []
    return ["sft.report_to=[wandb]", f"wandb.project={cfg.wandb.project}", f"wandb.group={cfg.name}",
            *([f"wandb.entity={cfg.wandb.entity}"] if cfg.wandb.entity else [])]


@dataclass
class Run:
    """One trained model of the sweep: arm x model x train grid point x seed."""

    arm: str
    seed: int
    model: ModelSpec
    point: dict[str, Any]
    run: str        # path segment: [model/]arm/seedN
    tag: str        # job-name segment


def _train_files(cfg: SweepRecipe) -> list[str]:
    """The train recipe and the launcher's accelerate config, if any (their content is part of the job's hash)."""
    found = re.search(r"--config[_-]file[= ]+(\S+)", cfg.train.launcher)
    return [cfg.train.recipe, *([found.group(1)] if found else [])]


def train_job(g: Graph, r: Run, arm: Arm) -> str:
    cfg = g.cfg
    train_out = g.out / "train" / r.run
    train_sets = [*in_sweep(g.out, [*cfg.train.set, *r.model.set]), *assignments(r.point), f"output_dir={train_out}",
                  f"seed={r.seed}", *wandb_sets(cfg)]
    cmd = " ".join([shlex.join([*shlex.split(cfg.train.launcher), cfg.train.recipe, *_sets(train_sets)]), *arm.data_flags,
                    "--resume --no-progress"])
    return g.add(Job(f"train-{r.tag}", "train", cmd, str(train_out), deps=[arm.data_job] if arm.data_job else [],
                     resources=cfg.train.resources.model_dump(), label=r.arm, seed=r.seed, model=r.model.name,
                     inputs=[*(file_digest(f) for f in _train_files(cfg)), *arm.inputs,
                             # data.datasets: every arm sets its own (arm.inputs, or the parent job's hash)
                             *named_inputs(g.out, resolve("mlift.train.sft:TrainRecipe"), cfg.train.recipe,
                                           [*train_sets, "data.datasets=[]"])]))


def eval_job(g: Graph, r: Run, train: str, base_model: str, lora: bool) -> str:
    cfg = g.cfg
    assert cfg.eval is not None
    train_out = g.out / "train" / r.run
    eval_out = g.out / "eval" / r.run
    model_args = ["--model", base_model, "--adapter", str(train_out)] if lora else ["--model", str(train_out)]
    cmd = shlex.join(["mlift", "eval", *model_args, "--suite", cfg.eval.suite, "--out", str(eval_out), *cfg.eval.args])
    return g.add(Job(f"eval-{r.tag}", "eval", cmd, str(eval_out), deps=[train],
                     resources=cfg.eval.resources.model_dump(), label=r.arm, seed=r.seed, model=r.model.name,
                     inputs=[file_digest(cfg.eval.suite),
                             *named_inputs(g.out, resolve("mlift.eval.suite:EvalSuite"), cfg.eval.suite,
                                           eval_sets(cfg.eval.args))]))


def eval_sets(args: list[str]) -> list[str]:
    """The suite overrides in `mlift eval` flags (--set K=V, --data-dir D)."""
    pairs = list(zip(args, args[1:]))
    return [v for a, v in pairs if a == "--set"] + [f"data_dir={v}" for a, v in pairs if a == "--data-dir"]


def report_job(g: Graph, model: ModelSpec, evals: list[Job]) -> str:
    cfg = g.cfg
    many = len(cfg.models) > 1
    report_out = g.out / "report" / (model.name if many else "")
    cmd = shlex.join(["mlift", "report", *(f"{e.label}@{e.seed}={e.out}" for e in evals), "--out", str(report_out),
                      *(["--baseline", cfg.report.baseline] if cfg.report.baseline else []), *cfg.report.args])
    return g.add(Job(f"report-{model.name}" if many else "report", "report", cmd, str(report_out),
                     deps=[e.name for e in evals], resources=cfg.report.resources.model_dump(), model=model.name))


def models(g: Graph) -> None:
    from mlift.sweep.judging import answer_job, judge_jobs, judge_report_job

    cfg = g.cfg
    for model in cfg.models:
        evals: list[Job] = []
        judges: list[Job] = []
        for point in grid_points(cfg.train.grid):
            base_model, lora = train_model(cfg, model, point, g.validate)
            suffix = point_label("", None, point) if point else ""
            mtag = "" if len(cfg.models) == 1 else f"{model.name}/"
            answers = []
            for arm in g.arms:
                for seed in cfg.seeds:
                    run = f"{mtag}{arm.label}{suffix}/seed{seed}"
                    r = Run(arm.label + suffix, seed, model, point, run, run.replace("/", "-"))
                    train = train_job(g, r, arm)
                    if cfg.eval is not None:
                        eval_job(g, r, train, base_model, lora)
                        evals.append(g.jobs[-1])
                    if cfg.answer is not None:
                        answers.append((r, answer_job(g, r, train, base_model, lora)))
            judges += judge_jobs(g, answers, suffix)
        if cfg.eval is not None and cfg.report.enabled and evals:
            report_job(g, model, evals)
        judge_report_job(g, model, judges)


def expand(recipe: Recipe[SweepRecipe], validate: bool = True) -> list[Job]:
    """The sweep's jobs in dependency order (parents first)."""
    cfg = recipe.cfg
    if cfg.judge is not None and cfg.answer is None:
        raise RecipeError(f"{recipe.path}: judge: needs an answer: section (the judge compares the models' answers)")
    g = Graph(recipe, validate)
    datasets(g)
    models(g)
    if cfg.eval is not None and validate:
        from mlift.eval.suite import EvalSuite
        from mlift.recipe import load_recipe

        args = cfg.eval.args
        sets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--set"]
        try:
            load_recipe(cfg.eval.suite, EvalSuite, sets)
        except RecipeError as exc:
            raise RecipeError(f"{recipe.path}: eval.suite: {exc}") from None
    if cfg.eval is not None or cfg.judge is not None:
        from mlift.sweep.validate import check_labels

        check_labels(recipe.path, cfg.name, cfg.report.baseline, cfg.report.args,
                     {j.label for j in g.jobs if j.kind in ("eval", "judge")})
    return g.jobs
