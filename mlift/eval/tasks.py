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
import json
import sys
from pathlib import Path

from mlift.eval.flores import build_flores
from mlift.eval.mmlu import build_mmlu
from mlift.eval.spec import UTILS, Generation, TaskSpec
from mlift.eval.suite import FloresTask, MMLUTask, XLSumTask
from mlift.eval.xlsum import build_xlsum
from mlift.languages import get_language


def build_tasks(tasks_dir: str | Path, langs: list[str], xlsum: XLSumTask | None = None, flores: FloresTask | None = None,
                mmlu: MMLUTask | None = None, data_dir: str | Path | None = None, limit: int | None = None,
                num_fewshot: int = 0, skipped: list[str] | None = None,
                generation: Generation | None = None) -> list[TaskSpec]:
    """Write the task YAMLs (and their data) for `langs` into `tasks_dir`; return what was built, in order.
    `limit`/`num_fewshot`: the run's, so only the docs the run reads are materialised. A task the benchmark does not
    have for a language (XL-Sum has no German, MMMLU covers 14 languages) is skipped with a warning and appended to
    `skipped`, so the manifest says why a column is missing."""
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
