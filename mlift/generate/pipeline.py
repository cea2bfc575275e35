"""Runs the generation pipeline per language on the runner: <output_dir>/<flores>/<step>/shard-*.jsonl.

Steps: fragments -> dedup (global) -> to_english -> instruct -> score -> select (global) -> to_target.
Map steps run shard j from shard j of the previous step, so a Slurm array task can run all map steps of its shards;
a global step needs all shards of its input and raises NotReady otherwise. Models load lazily, only for a step that
still has work, so a resumed run whose LLM stages are done never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np

from mlift.data.corpus import document_shards
from mlift.generate.config import STEPS, GenerateRecipe
from mlift.generate.dedup import plan_dedup
from mlift.generate.fragments import FragmentStage
from mlift.generate.instruct import InstructStage
from mlift.generate.plan import NotReady, PlanStage, ensure_plan, iter_all
from mlift.generate.score import ScoreStage
from mlift.generate.select import Embedder, embed_all, mean_pairwise_cosine, select_indices
from mlift.generate.to_english import to_english_stage
from mlift.generate.to_target import ToTargetStage
from mlift.languages import get_language
from mlift.runner.stage import StageRunner, StageStats, shard_files

FINAL = STEPS[-1]


class _Done:
    """Stands in for a stage whose shards (this process's) are all done: nothing to load, nothing to run."""

    batch_size = 1

    def __init__(self, name: str):
        self.name = name

    def process(self, batch):  # pragma: no cover - never called: the runner skips finished shards
        raise RuntimeError(f"{self.name}: shard unexpectedly not done")


class Models:
    """The recipe's models, built on first use and shared by all languages (one request cache per run)."""

    def __init__(self, cfg: GenerateRecipe):
        self.cfg = cfg
        self.cache_dir = Path(cfg.output_dir)

    @cached_property
    def translator(self):
        from mlift.translate.translators import make_translator

        return make_translator(self.cfg.translator, self.cache_dir, self.cfg.seed)

    @cached_property
    def back_translator(self):
        from mlift.translate.translators import make_translator

        if self.cfg.back_translator is None:
            return self.translator
        return make_translator(self.cfg.back_translator, self.cache_dir, self.cfg.seed)

    @cached_property
    def instruct_llm(self):
        from mlift.llm import make_llm

        return make_llm(self.cfg.instruct.llm, self.cache_dir, self.cfg.seed)

    @cached_property
    def judge(self):
        from mlift.llm import make_llm

        if self.cfg.score.judge is None:
            return self.instruct_llm
        return make_llm(self.cfg.score.judge, self.cache_dir, self.cfg.seed)

    @cached_property
    def contamination(self):
        """The eval sets' n-gram index as a check of the final pairs, or None (built once, only if to_target runs)."""
        from mlift.data.contamination import ContaminationStage

        check = self.cfg.contamination
        return ContaminationStage(check.index(), check.min_hits, check.drop, "to_target") if check else None

    @cached_property
    def embedder(self):
        return Embedder(self.cfg.select.embedder, self.cfg.seed)


def run_language(cfg: GenerateRecipe, lang: str, models: Models, shard: tuple[int, int] = (0, 1),
                 only: str | None = None, progress: bool = True, log: Callable[[str], None] = print,
                 steps: list[str] | None = None, retry_quarantined: bool = False) -> dict[str, StageStats]:
    """`only` one step, or `steps` (a subset, run in pipeline order), or all; the shards of `shard` only. Stops after
    a step that left records pending (the next run retries them)."""
    lang = get_language(lang).flores
    run_dir = Path(cfg.output_dir) / lang
    n = cfg.num_shards
    runner = StageRunner(run_dir, n, shard, progress=progress, max_attempts=cfg.max_attempts,
                         retry_quarantined=retry_quarantined)
    stats: dict[str, StageStats] = {}

    def todo(name: str) -> bool:
        return any(runner.mine(j) and not runner.is_done(name, j) for j in range(n))

    def prev(name: str):
        return shard_files(run_dir / STEPS[STEPS.index(name) - 1], n)

    def check_prev(name: str) -> None:
        before = STEPS[STEPS.index(name) - 1]
        missing = [j for j in range(n) if runner.mine(j) and not runner.is_done(before, j)]
        if missing:
            raise NotReady(f"{lang}/{name}: step {before} is not done for shards {missing[:8]}; run it first")

    def reopen_global(name: str) -> None:
        # A retried shard changed this global step's input: its plan and every later shard are redone.
        if runner.redone:
            (run_dir / name / "_plan.json").unlink(missing_ok=True)
            runner.redone.update(range(n))

    bs = cfg.batch_size
    if only is not None:
        steps = [only]
    for name in STEPS if steps is None else [s for s in STEPS if s in steps]:
        if name != "fragments":
            check_prev(name)
        if name in ("dedup", "select"):
            reopen_global(name)
        if name == "fragments":
            stage = FragmentStage(cfg.fragments, lang, batch_size=8) if todo(name) else _Done(name)
            stats[name] = runner.run(stage, document_shards(cfg.sources, lang, n))
        elif name == "dedup":
            plan = ensure_plan(run_dir / "dedup", run_dir / "fragments", n,
                               lambda: plan_dedup(iter_all(run_dir / "fragments", n), cfg.fragments.dedup, cfg.seed))
            stats[name] = runner.run(PlanStage("dedup", plan), prev(name))
        elif name == "to_english":
            stage = to_english_stage(models.translator, bs) if todo(name) else _Done(name)
            stats[name] = runner.run(stage, prev(name))
        elif name == "instruct":
            stage = InstructStage(models.instruct_llm, cfg.instruct, cfg.seed, bs) if todo(name) else _Done(name)
            stats[name] = runner.run(stage, prev(name))
        elif name == "score":
            stage = ScoreStage(models.judge, cfg.score, cfg.seed, cfg.fragments.langid, bs) if todo(name) \
                else _Done(name)
            stats[name] = runner.run(stage, prev(name))
        elif name == "select":
            plan = ensure_plan(run_dir / "select", run_dir / "score", n, lambda: plan_select(cfg, run_dir, models))
            stats[name] = runner.run(PlanStage("select", plan), prev(name))
        elif name == "to_target":
            stage = ToTargetStage(models.back_translator, lang, bs, cfg.fragments.langid, models.contamination) \
                if todo(name) else _Done(name)
            stats[name] = runner.run(stage, prev(name))
        else:
            raise ValueError(f"unknown step {name!r}; steps: {', '.join(STEPS)}")
        st = stats[name]
        c = st.counts
        log(f"{lang} {name}: in {c['in']}  kept {c['keep']}  dropped {c['drop']}  quarantined {c['quarantine']}  "
            f"retried {c['retried']}  pending {st.pending}  ({st.shards_done}/{n} shards, {st.shards_skipped} resumed)")
        if st.pending:
            break  # later steps need this one complete
    return stats


def plan_select(cfg: GenerateRecipe, run_dir: Path, models: Models) -> dict:
    n = cfg.num_shards
    ids: list[str] = []
    quality: list[float] = []

    def texts():
        for rec in iter_all(run_dir / "score", n):
            ids.append(rec.id)
            quality.append(float(rec.meta.get("scores", {}).get("quality", 0.0)))
            yield rec["instruction_en"]

    emb = embed_all(models.embedder, texts())
    q = np.array(quality, dtype=np.float64)
    how: dict = {}  # the cluster method's counts (clusters, near-duplicates) go to the manifest
    keep = select_indices(emb, q, cfg.select, cfg.seed, info=how) if ids else np.arange(0)
    kept = set(int(i) for i in keep)
    drop = {ids[i]: ["not_selected", f"diversity selection ({cfg.select.method}) kept {len(kept)} of {len(ids)}"]
            for i in range(len(ids)) if i not in kept}
    # The diversity figure: mean pairwise cosine of the kept instructions vs a random sample of the same size.
    rng = np.random.default_rng(cfg.seed)
    m = min(len(keep), cfg.report.diversity_sample)
    sel = rng.choice(keep, size=m, replace=False) if m else keep
    rand = rng.choice(len(ids), size=m, replace=False) if m else keep
    return {"drop": drop, "info": {"candidates": len(ids), "kept": len(kept), "method": cfg.select.method,
                                   "embedder": models.embedder.name,
                                   "mean_cos_selected": mean_pairwise_cosine(emb[sel]) if m else None,
                                   "mean_cos_random": mean_pairwise_cosine(emb[rand]) if m else None,
                                   "sample": int(m), **how}}


def run_pipeline(cfg: GenerateRecipe, shard: tuple[int, int] = (0, 1), steps: list[str] | None = None,
                 progress: bool = True, log: Callable[[str], None] = print,
                 retry_quarantined: bool = False) -> dict[str, dict[str, StageStats]]:
    """Runs `steps` (default: all, in order) of this process's shards; a global step needs all shards of its input."""
    if cfg.torch_threads:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    models = Models(cfg)
    return {get_language(lang).flores: run_language(cfg, lang, models, shard, progress=progress, log=log, steps=steps,
                                                    retry_quarantined=retry_quarantined)
            for lang in cfg.languages}


def all_done(cfg: GenerateRecipe) -> bool:
    from mlift.generate.plan import missing_shards

    return all(not missing_shards(Path(cfg.output_dir) / get_language(lang).flores / FINAL, cfg.num_shards)
               for lang in cfg.languages)
