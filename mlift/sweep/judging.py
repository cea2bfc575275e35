"""The answer -> judge -> judge-report jobs of a sweep (Pinch's evaluation), appended to the job DAG by graph.models.

Per trained model: an answer job after its training. Per model that is not a reference: one judge job after its own
answers and the answers of every language's reference model (the arm `judge.reference.format(lang=L)`, same base
model, train point and seed), comparing language L with the model tuned only on L. Per base model: one judge report
after all judge jobs (a table and a figure of the per-language scores against P)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from mlift.recipe import RecipeError
from mlift.sweep.jobs import Job, file_digest, named_inputs


def answer_job(g, r, train: str, base_model: str, lora: bool) -> Job:
    """`mlift answer` for one trained model (graph.Run r), after its train job."""
    cfg = g.cfg
    assert cfg.answer is not None
    train_out = g.out / "train" / r.run
    out = g.out / "answers" / r.run
    model_args = ["--model", base_model, "--adapter", str(train_out)] if lora else ["--model", str(train_out)]
    cmd = shlex.join(["mlift", "answer", *model_args, "--instructions", cfg.answer.instructions, "--out", str(out),
                      "--seed", str(r.seed), *cfg.answer.args, "--no-progress"])
    job = Job(f"answer-{r.tag}", "answer", cmd, str(out), deps=[train], resources=cfg.answer.resources.model_dump(),
              label=r.arm, seed=r.seed, model=r.model.name, inputs=_instruction_digests(cfg.answer.instructions))
    g.add(job)
    return job


def _instruction_digests(source: str) -> list[str]:
    """An edited eval set reruns the answers (and, through the parents' hashes, the judges)."""
    from mlift.judge.answer import instruction_files

    try:
        return [file_digest(f) for f in instruction_files(source)]
    except RecipeError:
        return [f"{source}:missing"]  # not there yet (e.g. built on the cluster): the answer job will say so


def reference_labels(g) -> dict[str, str]:
    """language -> the arm label of its reference model; every one must be an arm of the sweep."""
    spec = g.cfg.judge
    arms = {a.label for a in g.arms}
    refs = {lang: spec.reference.format(lang=lang) for lang in spec.langs}
    missing = {lang: label for lang, label in refs.items() if label not in arms}
    if missing:
        raise RecipeError(f"{g.recipe.path}: judge.reference {spec.reference!r}: no arm labelled "
                          f"{', '.join(sorted(missing.values()))} (arms: {sorted(arms)})")
    return refs


def judge_jobs(g, answers: list[tuple[object, Job]], suffix: str) -> list[Job]:
    """One judge job per non-reference model of one (base model, train point): its answers vs all references."""
    spec = g.cfg.judge
    if spec is None:
        return []
    refs = reference_labels(g)
    ref_arms = {label + suffix for label in refs.values()}
    by_key = {(j.label, j.seed): j for _, j in answers}
    jobs = []
    for r, ans in answers:
        if ans.label in ref_arms:
            continue
        ref_jobs = {lang: by_key[(label + suffix, ans.seed)] for lang, label in refs.items()}
        out = g.out / "judge" / r.run  # type: ignore[attr-defined]
        ref_files = {lang: {"path": str(Path(j.out, "answers.jsonl")), "name": j.label} for lang, j in ref_jobs.items()}
        sets = [*spec.set, f"output_dir={out}", f"seed={ans.seed}",
                "model_a=" + json.dumps({"path": str(Path(ans.out, "answers.jsonl")), "name": ans.label}),
                "reference_by_lang=" + json.dumps(ref_files, sort_keys=True)]
        from mlift.judge.pairwise import JudgeRecipe

        if g.validate and not jobs:  # the judge recipe with the sweep's overrides, before anything is submitted
            from mlift.recipe import load_recipe

            load_recipe(spec.recipe, JudgeRecipe, sets)
        cmd = shlex.join(["mlift", "judge", spec.recipe, *sum((["--set", s] for s in sets), []), "--no-progress"])
        job = Job(f"judge-{r.tag}", "judge", cmd, str(out),  # type: ignore[attr-defined]
                  deps=[ans.name, *sorted({j.name for j in ref_jobs.values()})], resources=spec.resources.model_dump(),
                  label=ans.label, seed=ans.seed, model=ans.model,
                  inputs=[file_digest(spec.recipe), *named_inputs(g.out, JudgeRecipe, spec.recipe, sets)])
        g.add(job)
        jobs.append(job)
    return jobs


def judge_report_job(g, model, judges: list[Job]) -> None:
    cfg = g.cfg
    if not judges or not cfg.report.enabled:
        return
    many = len(cfg.models) > 1
    out = g.out / "report" / (model.name if many else "") / "judge"
    cmd = shlex.join(["mlift", "judge-report", *(f"{j.label}@{j.seed}={j.out}" for j in judges), "--out", str(out)])
    g.add(Job(f"judge-report-{model.name}" if many else "judge-report", "report", cmd, str(out),
              deps=[j.name for j in judges], resources=cfg.report.resources.model_dump(), model=model.name))

