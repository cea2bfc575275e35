"""Build the lm-eval tasks of an eval run: XLSUM, FLORES-200 (both directions) and multilingual MMLU, per language.

Every source (hub or local files) is first materialised as JSONL (content-addressed, under `$MLIFT_EVAL_DATA_CACHE`,
default ~/.cache/mlift/eval_data), then one task YAML per language/direction is written into the run's tasks folder
with absolute `data_files` (lm-eval resolves relative ones against the CWD) and a `utils.py` that re-exports
mlift.eval.hooks. The configs are the ones the committed hub tasks in eval/ use (mlift.eval.configs); what a run adds
is the generation budget and the stop sequences for the model it evaluates (`Generation`). Where each task's data came
from (hub id, subset, split, or file paths) and its generation settings are returned and recorded with the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlift.eval.configs import COMPLETION_STOPS, flores_config, write_task, xlsum_config
from mlift.eval.suite import FloresTask, MMLUTask, XLSumTask
from mlift.languages import Language, get_language

FALLBACK_BUDGET = {"xlsum": 256, "flores": 256}  # no tokenizer to measure references with (the task writer's CLI)
UTILS = '"""lm-eval hooks for mlift tasks."""\nfrom mlift.eval.hooks import *  # noqa: F401,F403\n'


@dataclass
class TaskSpec:
    name: str
    family: str
    lang: str  # FLORES code; for translation the non-English side
    direction: str | None = None
    builtin: bool = False
    source: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] | None = None  # until, max_gen_toks and the rule that set it
    run_as: str | None = None  # the name lm-eval is asked for when it is not `name` (a wrapper group with overrides)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """Stops and token budgets for the evaluated model: the template's end-of-turn in chat mode, the task's delimiter
    in completion mode; the budget a multiple of the longest reference in the model's tokenizer."""

    tokenizer: Any = None
    chat: bool = False
    end_of_turn: str | None = None
    context: int | None = None  # the model's context in tokens: the budget leaves at least half of it to the prompt

    def settings(self, family: str, cfg: XLSumTask | FloresTask, references: list[str]) -> dict[str, Any]:
        if cfg.until is not None:
            until, stop_rule = list(cfg.until), "suite"
        elif self.chat:
            until = [self.end_of_turn] if self.end_of_turn else []
            stop_rule = "chat template end-of-turn (+ EOS, which lm-eval always adds)"
        else:
            until, stop_rule = list(COMPLETION_STOPS[family]), "completion: task delimiter (+ EOS)"
        if cfg.max_gen_toks:
            budget, rule = cfg.max_gen_toks, {"budget_rule": "suite max_gen_toks"}
        elif self.tokenizer is None:
            budget, rule = FALLBACK_BUDGET[family], {"budget_rule": "fixed (no tokenizer to measure references)"}
        else:
            from mlift.eval.model import reference_budget

            budget, longest = reference_budget(self.tokenizer, references, cfg.budget_factor)
            rule = {"budget_rule": f"ceil({cfg.budget_factor} x longest reference in the model's tokenizer)",
                    "longest_reference_tokens": longest}
            if self.context and budget > self.context // 2:
                rule.update(uncapped=budget, capped_at="half the model's context")
                budget = self.context // 2
        return {"until": until, "stop_rule": stop_rule, "max_gen_toks": budget, **rule}


def data_cache_dir() -> Path:
    """Where materialised task data lives: content-addressed, so a rerun reuses the file and datasets' Arrow cache."""
    return Path(os.environ.get("MLIFT_EVAL_DATA_CACHE", Path.home() / ".cache" / "mlift" / "eval_data"))


def write_jsonl(name: str, rows: list[dict]) -> Path:
    blob = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path = data_cache_dir() / f"{name}.{hashlib.sha256(blob.encode()).hexdigest()[:16]}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(blob, encoding="utf-8")
        os.replace(tmp, path)
    return path.resolve()


def evaluated(test: list[dict], fewshot: list[dict] | None, first: int | None, pooled: bool) -> list[dict]:
    """The docs the run reads. lm-eval's `limit` takes the first N docs; materialising only those is the same run,
    minus the I/O. Not when few-shot examples would be drawn from the test split, where the pool must stay whole."""
    return test[:first] if first is not None and (fewshot or not pooled) else test


def data_files(name: str, test: list[dict], fewshot: list[dict] | None) -> dict[str, Any]:
    files = {"test": str(write_jsonl(f"{name}.test", test))}
    split = {"test_split": "test"}
    if fewshot:
        files["train"] = str(write_jsonl(f"{name}.fewshot", fewshot))
        split["fewshot_split"] = "train"
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": files}, **split}


def hub_rows(hub_id: str, subset: str, split: str) -> tuple[list[dict], dict[str, Any]]:
    """The rows and where they came from; a script dataset (XL-Sum) is read from its parquet export (mlift.data.hub)."""
    from mlift.data.hub import load_config

    ds, revision = load_config(hub_id, subset, split)
    return [dict(r) for r in ds], {"hub_id": hub_id, "subset": subset, **({"revision": revision} if revision else {})}


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} not found (check --data-dir, the language and the split)")
    return path


# ---------------------------------------------------------------- XLSUM

def xlsum_docs(rows: list[dict], lang: Language, max_article_chars: int = 2000) -> list[dict]:
    """XL-Sum rows -> task docs (whitespace-collapsed article cut at max_article_chars; the summary as given)."""
    return [{"id": str(r.get("id", i)), "lang": lang.flores, "lang_name": lang.name,
             "text": " ".join(r["text"].split())[:max_article_chars], "summary": r["summary"].strip()}
            for i, r in enumerate(rows)]


def _xlsum_rows(cfg: XLSumTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[dict], dict]:
    if cfg.source == "hub":
        rows, src = hub_rows(cfg.hub_id, lang.xlsum, split)
    else:
        path = need(Path(data_dir or ".") / "xlsum" / f"{lang.xlsum}_{split}.jsonl", "XL-Sum")
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8-sig").splitlines() if x.strip()]
        src = {"path": str(path.resolve())}
    docs = [{**d, "rouge_mode": cfg.rouge_mode} for d in xlsum_docs(rows, lang, cfg.max_article_chars)]
    return docs, {**src, "split": split}


def build_xlsum(cfg: XLSumTask, lang: Language, tasks_dir: Path, data_dir: Path | None, first: int | None = None,
                pooled: bool = True, gen: Generation | None = None) -> TaskSpec:
    test, source = _xlsum_rows(cfg, lang, cfg.split, data_dir)
    fewshot = None
    if cfg.fewshot_split:
        fewshot, source["fewshot"] = _xlsum_rows(cfg, lang, cfg.fewshot_split, data_dir)
    test = evaluated(test, fewshot, first, pooled)
    settings = (gen or Generation()).settings("xlsum", cfg, [d["summary"] for d in test[:first]])
    config = xlsum_config(lang, data_files(f"mlift_xlsum_{lang.flores}", test, fewshot), settings["until"],
                          settings["max_gen_toks"], {"source": source, "generation": settings})
    write_task(tasks_dir, config)
    return TaskSpec(config["task"], "xlsum", lang.flores, source=source, generation=settings)


# ---------------------------------------------------------------- FLORES-200

def _flores_lines(cfg: FloresTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[str], dict]:
    if cfg.source == "hub":
        from mlift.eval.hub import flores_subset

        subset = flores_subset(lang)
        rows, src = hub_rows(cfg.hub_id, subset, split)
        rows = sorted(rows, key=lambda r: int(r.get("id", 0)))
        return [r["text"] for r in rows], {**src, "split": split}
    path = need(Path(data_dir or ".") / "flores200" / split / f"{lang.flores}.{split}", "FLORES-200")
    return path.read_text(encoding="utf-8-sig").rstrip("\n").split("\n"), {"path": str(path.resolve()), "split": split}


def _flores_pair(cfg: FloresTask, lang: Language, pivot: Language, split: str,
                 data_dir: Path | None) -> tuple[list[str], list[str], dict, dict]:
    xx, xx_src = _flores_lines(cfg, lang, split, data_dir)
    en, en_src = _flores_lines(cfg, pivot, split, data_dir)
    if len(xx) != len(en):
        raise ValueError(f"FLORES {lang.flores} has {len(xx)} lines but {pivot.flores} has {len(en)}: not aligned")
    return xx, en, xx_src, en_src


def _local_split_exists(cfg: FloresTask, split: str, data_dir: Path | None) -> bool:
    return cfg.source == "hub" or (Path(data_dir or ".") / "flores200" / split).is_dir()


def build_flores(cfg: FloresTask, lang: Language, tasks_dir: Path, data_dir: Path | None, first: int | None = None,
                 pooled: bool = True, gen: Generation | None = None) -> list[TaskSpec]:
    """Few-shot examples come from `fewshot_split` (dev). Local data without it, in a few-shot run: the first
    `fewshot_holdout` lines of the evaluated split become the pool and only the rest is evaluated (recorded)."""
    pivot = get_language(cfg.pivot)
    if lang.flores == pivot.flores:
        return []
    xx, en, xx_src, en_src = _flores_pair(cfg, lang, pivot, cfg.split, data_dir)
    fs_xx = fs_en = None
    fewshot_source: dict[str, Any] | None = None
    if pooled and _local_split_exists(cfg, cfg.fewshot_split, data_dir):
        fs_xx, fs_en, fs_src, _ = _flores_pair(cfg, lang, pivot, cfg.fewshot_split, data_dir)
        fewshot_source = {"split": cfg.fewshot_split, **{k: v for k, v in fs_src.items() if k != "split"}}
    elif pooled:
        k = cfg.fewshot_holdout
        fs_xx, fs_en, xx, en = xx[:k], en[:k], xx[k:], en[k:]
        fewshot_source = {"split": f"{cfg.split}[:{k}]", "note": f"no {cfg.fewshot_split} split under the data dir: "
                          f"the first {k} {cfg.split} lines are the few-shot pool, {cfg.split}[{k}:] is evaluated"}
        xx_src, en_src = ({**s, "split": f"{cfg.split}[{k}:]"} for s in (xx_src, en_src))
    specs = []
    for direction in cfg.directions:
        src, tgt = (lang, pivot) if direction == "xx-en" else (pivot, lang)

        def docs(s_lines: list[str], t_lines: list[str], src: Language = src, tgt: Language = tgt) -> list[dict]:
            return [{"id": i, "src": s, "tgt": t, "src_lang": src.flores, "tgt_lang": tgt.flores, "src_name": src.name,
                     "tgt_name": tgt.name} for i, (s, t) in enumerate(zip(s_lines, t_lines, strict=True))]

        flip = direction == "en-xx"
        test = docs(*((en, xx) if flip else (xx, en)))
        fewshot = docs(*((fs_en, fs_xx) if flip else (fs_xx, fs_en))) if fs_xx is not None else None
        test = evaluated(test, fewshot, first, pooled)
        source = {"src": en_src if flip else xx_src, "tgt": xx_src if flip else en_src, "fewshot": fewshot_source}
        settings = (gen or Generation()).settings("flores", cfg, [d["tgt"] for d in test[:first]])
        name = f"mlift_flores_{src.flores}-{tgt.flores}"
        write_task(tasks_dir, flores_config(src, tgt, data_files(name, test, fewshot), settings["until"],
                                            settings["max_gen_toks"], {"source": source, "generation": settings}))
        specs.append(TaskSpec(name, "flores", lang.flores, direction=direction, source=source, generation=settings))
    return specs


def build_tasks(tasks_dir: str | Path, langs: list[str], xlsum: XLSumTask | None = None, flores: FloresTask | None = None,
                mmlu: MMLUTask | None = None, data_dir: str | Path | None = None, limit: int | None = None,
                num_fewshot: int = 0, skipped: list[str] | None = None,
                generation: Generation | None = None) -> list[TaskSpec]:
    """Write the task YAMLs (and their data) for `langs` into `tasks_dir`; return what was built, in order.
    `limit`/`num_fewshot`: the run's, so only the docs the run reads are materialised. A task the benchmark does not
    have for a language (XL-Sum has no German, MMMLU covers 14 languages) is skipped with a warning and appended to
    `skipped`, so the manifest says why a column is missing."""
    from mlift.eval.mmlu import build_mmlu

    skipped = [] if skipped is None else skipped

    def skip(why: str) -> None:
        skipped.append(why)
        print(f"mlift eval: skipped {why}", file=sys.stderr)

    first, pooled = limit, num_fewshot > 0  # pooled: the run draws few-shot examples
    tasks_dir = Path(tasks_dir)
    tasks_dir.mkdir(parents=True, exist_ok=True)
    (tasks_dir / "utils.py").write_text(UTILS, encoding="utf-8")
    data = Path(data_dir) if data_dir else None
    specs: list[TaskSpec] = []
    for code in langs:
        lang = get_language(code)
        if xlsum and not lang.xlsum:
            skip(f"xlsum {lang.flores}: XL-Sum has no {lang.name} subset (languages.tsv)")
        elif xlsum:
            specs.append(build_xlsum(xlsum, lang, tasks_dir, data, first, pooled, generation))
        if flores:
            specs.extend(build_flores(flores, lang, tasks_dir, data, first, pooled, generation))
        if mmlu:
            spec = build_mmlu(mmlu, lang, tasks_dir, data, first, pooled)
            if spec:
                specs.append(spec)
            else:
                skip(f"mmlu {lang.flores}: the {mmlu.format} benchmark has no {lang.name}")
    return specs


def main() -> None:
    """Write an eval suite's per-run task YAMLs (local data) into a folder, or the committed hub tasks (--write)."""
    from mlift.eval.suite import EvalSuite
    from mlift.recipe import load_recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", metavar="DIR", help="(re)generate the committed hub task YAMLs, e.g. eval/")
    parser.add_argument("--suite")
    parser.add_argument("--langs", nargs="+", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tokenizer", default=None, help="measure generation budgets in this model's tokenizer")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.write:
        from mlift.eval.hub import write_hub_tasks

        print(f"wrote {write_hub_tasks(args.write)} task YAMLs + utils.py into {args.write}")
        return
    if not (args.suite and args.out):
        parser.error("--suite and --out are required (or --write DIR)")
    overrides = [f"data_dir={args.data_dir}"] if args.data_dir else []
    if args.langs:
        overrides.append(f"langs=[{', '.join(args.langs)}]")
    suite = load_recipe(args.suite, EvalSuite, overrides).cfg
    gen = None
    if args.tokenizer:
        from mlift.eval.model import load_tokenizer

        gen = Generation(tokenizer=load_tokenizer(args.tokenizer))
    specs = build_tasks(args.out, suite.langs, suite.xlsum, suite.flores, suite.mmlu, suite.data_dir,
                        limit=suite.limit, num_fewshot=suite.num_fewshot, generation=gen)
    for spec in specs:
        print(json.dumps(spec.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    main()
