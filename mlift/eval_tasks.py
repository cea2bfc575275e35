"""Build the lm-eval tasks of an eval suite: XLSUM, FLORES-200 (both directions) and multilingual MMLU, per language.

Every source (hub or local files) is first materialised as normalised JSONL (content-addressed, under
`$MLIFT_EVAL_DATA_CACHE`, default ~/.cache/mlift/eval_data), then one task YAML per language/direction is written into
the tasks folder with absolute `data_files` (lm-eval resolves relative ones against the
CWD) and a `utils.py` that re-exports mlift.eval_hooks. Task names are unique (`mlift_xlsum_hin_Deva`,
`mlift_flores_hin_Deva-eng_Latn`, `mlift_mmlu_okapi_hin_Deva`), so lm-eval's built-ins never shadow them. Global-MMLU,
OpenAI MMMLU and Okapi m_MMLU from the hub reuse lm-eval's own built-in tasks. Where each task's data came from (hub id,
subset, split, or file paths) is returned and recorded with the results.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from mlift.languages import Language, get_language
from mlift.recipe import Schema


class XLSumTask(Schema):
    source: Literal["local", "hub"] = "local"
    hub_id: str = "csebuetnlp/xlsum"
    split: str = "test"
    fewshot_split: str | None = "train"
    max_article_chars: int = Field(2000, ge=1, description="articles are cut here so prompts fit small contexts")
    max_gen_toks: int = Field(64, ge=1)
    rouge_mode: Literal["xlsum", "unicode"] = Field(
        "xlsum", description="xlsum: the XL-Sum authors' scorer (multilingual-rouge); unicode: mlift's tokenizer")


class FloresTask(Schema):
    source: Literal["local", "hub"] = "local"
    hub_id: str = "openlanguagedata/flores_plus"  # facebook/flores is a loading script that datasets>=4 refuses
    split: str = "devtest"
    directions: list[Literal["xx-en", "en-xx"]] = Field(default_factory=lambda: ["xx-en", "en-xx"])
    pivot: str = "eng_Latn"
    max_gen_toks: int = Field(96, ge=1)


class MMLUTask(Schema):
    # okapi / hendrycks_csv: local files (or okapi from the hub via lm-eval's m_mmlu); global_mmlu / mmmlu: hub built-ins
    format: Literal["okapi", "hendrycks_csv", "global_mmlu", "mmmlu"] = "okapi"
    source: Literal["local", "hub"] = "local"
    split: str | None = Field(None, description="local split; default val (okapi) / test (hendrycks_csv)")
    fewshot_split: str | None = "dev"
    subjects: list[str] | None = Field(None, description="hendrycks_csv: only these subjects")


@dataclass
class TaskSpec:
    name: str
    family: str
    lang: str  # FLORES code; for translation the non-English side
    direction: str | None = None
    builtin: bool = False
    source: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Fn(str):
    """A `!function utils.<name>` value in a task YAML."""


def _fn_representer(dumper: yaml.SafeDumper, value: _Fn) -> yaml.Node:
    return dumper.represent_scalar("!function", f"utils.{value}")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Fn, _fn_representer)

_UTILS = '"""lm-eval hooks for mlift tasks."""\nfrom mlift.eval_hooks import *  # noqa: F401,F403\n'


def data_cache_dir() -> Path:
    """Where materialised task data lives: content-addressed, so a rerun reuses the file and datasets' Arrow cache."""
    return Path(os.environ.get("MLIFT_EVAL_DATA_CACHE", Path.home() / ".cache" / "mlift" / "eval_data"))


def _write_jsonl(name: str, rows: list[dict]) -> Path:
    blob = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path = data_cache_dir() / f"{name}.{hashlib.sha256(blob.encode()).hexdigest()[:16]}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(blob, encoding="utf-8")
        os.replace(tmp, path)
    return path.resolve()


def _write_task(tasks_dir: Path, config: dict[str, Any]) -> None:
    (tasks_dir / f"{config['task']}.yaml").write_text(
        yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")


def _data_files(name: str, test: list[dict], fewshot: list[dict] | None,
                first: int | None = None, pooled: bool = True) -> dict[str, Any]:
    # lm-eval's `limit` takes the first N docs; materialising only those is the same run, minus the I/O. Not when
    # few-shot examples would be drawn from the test split (no few-shot split), where the pool must stay whole.
    if first is not None and (fewshot or not pooled):
        test = test[:first]
    files = {"test": str(_write_jsonl(f"{name}.test", test))}
    split = {"test_split": "test"}
    if fewshot:
        files["train"] = str(_write_jsonl(f"{name}.fewshot", fewshot))
        split["fewshot_split"] = "train"
    return {"dataset_path": "json", "dataset_kwargs": {"data_files": files}, **split}


def _hub_rows(hub_id: str, subset: str, split: str) -> list[dict]:
    import datasets

    return [dict(r) for r in datasets.load_dataset(hub_id, subset, split=split)]


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} not found (check --data-dir, the language and the split)")
    return path


# ---------------------------------------------------------------- XLSUM

def _xlsum_rows(cfg: XLSumTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[dict], dict]:
    if cfg.source == "hub":
        rows, src = _hub_rows(cfg.hub_id, lang.xlsum, split), {"hub_id": cfg.hub_id, "subset": lang.xlsum}
    else:
        path = _need(Path(data_dir or ".") / "xlsum" / f"{lang.xlsum}_{split}.jsonl", "XL-Sum")
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        src = {"path": str(path.resolve())}
    docs = [{"id": str(r.get("id", i)), "lang": lang.flores, "lang_name": lang.name,
             "text": " ".join(r["text"].split())[: cfg.max_article_chars], "summary": r["summary"].strip(),
             "rouge_mode": cfg.rouge_mode}
            for i, r in enumerate(rows)]
    return docs, {**src, "split": split}


def build_xlsum(cfg: XLSumTask, lang: Language, tasks_dir: Path, data_dir: Path | None,
                first: int | None = None, pooled: bool = True) -> TaskSpec:
    name = f"mlift_xlsum_{lang.flores}"
    test, source = _xlsum_rows(cfg, lang, cfg.split, data_dir)
    fewshot = None
    if cfg.fewshot_split:
        fewshot, fs_source = _xlsum_rows(cfg, lang, cfg.fewshot_split, data_dir)
        source["fewshot"] = fs_source
    _write_task(tasks_dir, {
        "task": name, "tag": ["mlift_xlsum"], **_data_files(name, test, fewshot, first, pooled),
        "output_type": "generate_until",
        "doc_to_text": "Summarize the following article in one sentence in {{lang_name}}.\n\nArticle: {{text}}\n\nSummary:",
        "doc_to_target": " {{summary}}",
        "target_delimiter": "",
        "fewshot_delimiter": "\n\n",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": cfg.max_gen_toks, "do_sample": False},
        "process_results": _Fn("xlsum_process_results"),
        "metric_list": [{"metric": m, "aggregation": _Fn(f"agg_{m}"), "higher_is_better": True}
                        for m in ("rouge1", "rouge2", "rougeL")],
        "metadata": {"version": 1.0, "source": source},
    })
    return TaskSpec(name, "xlsum", lang.flores, source=source)


# ---------------------------------------------------------------- FLORES-200

def _flores_lines(cfg: FloresTask, lang: Language, data_dir: Path | None) -> tuple[list[str], dict]:
    if cfg.source == "hub":
        rows = sorted(_hub_rows(cfg.hub_id, lang.flores, cfg.split), key=lambda r: int(r.get("id", 0)))
        return [r["text"] for r in rows], {"hub_id": cfg.hub_id, "subset": lang.flores, "split": cfg.split}
    path = _need(Path(data_dir or ".") / "flores200" / cfg.split / f"{lang.flores}.{cfg.split}", "FLORES-200")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n"), {"path": str(path.resolve()), "split": cfg.split}


def build_flores(cfg: FloresTask, lang: Language, tasks_dir: Path, data_dir: Path | None,
                first: int | None = None, pooled: bool = True) -> list[TaskSpec]:
    pivot = get_language(cfg.pivot)
    if lang.flores == pivot.flores:
        return []
    xx, xx_src = _flores_lines(cfg, lang, data_dir)
    en, en_src = _flores_lines(cfg, pivot, data_dir)
    if len(xx) != len(en):
        raise ValueError(f"FLORES {lang.flores} has {len(xx)} lines but {pivot.flores} has {len(en)}: not aligned")
    specs = []
    for direction in cfg.directions:
        src, tgt = (lang, pivot) if direction == "xx-en" else (pivot, lang)
        src_lines, tgt_lines = (xx, en) if direction == "xx-en" else (en, xx)
        name = f"mlift_flores_{src.flores}-{tgt.flores}"
        docs = [{"id": i, "src": s, "tgt": t, "src_lang": src.flores, "tgt_lang": tgt.flores, "src_name": src.name,
                 "tgt_name": tgt.name} for i, (s, t) in enumerate(zip(src_lines, tgt_lines, strict=True))]
        source = {"src": xx_src if src is lang else en_src, "tgt": xx_src if tgt is lang else en_src}
        _write_task(tasks_dir, {
            "task": name, "tag": ["mlift_flores"], **_data_files(name, docs, None, first, pooled),
            "output_type": "generate_until",
            "doc_to_text": "Translate from {{src_name}} to {{tgt_name}}.\n{{src_name}}: {{src}}\n{{tgt_name}}:",
            "doc_to_target": " {{tgt}}",
            "target_delimiter": "",
            "fewshot_delimiter": "\n\n",
            "generation_kwargs": {"until": ["\n"], "max_gen_toks": cfg.max_gen_toks, "do_sample": False},
            "process_results": _Fn("flores_process_results"),
            "metric_list": [{"metric": "bleu", "aggregation": _Fn("agg_bleu"), "higher_is_better": True},
                            {"metric": "spbleu", "aggregation": _Fn("agg_spbleu"), "higher_is_better": True},
                            {"metric": "chrf++", "aggregation": _Fn("agg_chrfpp"), "higher_is_better": True}],
            "metadata": {"version": 1.0, "source": source},
        })
        specs.append(TaskSpec(name, "flores", lang.flores, direction=direction, source=source))
    return specs


# ---------------------------------------------------------------- multilingual MMLU

LETTERS = "ABCD"
# lm-eval built-in task names per language (ISO 639-1 -> MMMLU locale slug)
MMMLU_SLUGS = {"ar": "ar_xy", "bn": "bn_bd", "de": "de_de", "es": "es_la", "fr": "fr_fr", "hi": "hi_in", "id": "id_id",
               "it": "it_it", "ja": "ja_jp", "ko": "ko_kr", "pt": "pt_br", "sw": "sw_ke", "yo": "yo_ng", "zh": "zh_cn"}


def read_okapi(path: Path) -> list[dict]:
    """Okapi m_MMLU JSON (instruction, option_a..d, answer letter, id) -> normalised MMLU docs."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [{"id": str(r.get("id", i)), "question": r["instruction"].strip(),
             "choices": [str(r[f"option_{c}"]).strip() for c in "abcd"],
             "answer": LETTERS.index(str(r["answer"]).strip().upper())} for i, r in enumerate(rows)]


def read_hendrycks(paths: list[Path]) -> list[dict]:
    """Hendrycks-style CSVs (question, choice0..3, answer; the answer a 0-based index or a letter) -> MMLU docs."""
    docs = []
    for path in paths:
        subject = path.stem.rsplit("_", 1)[0]
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f)):
                ans = r["answer"].strip()
                docs.append({"id": f"{subject}-{i}", "subject": subject, "question": r["question"].strip(),
                             "choices": [r[f"choice{k}"].strip() for k in range(4)],
                             "answer": LETTERS.index(ans.upper()) if ans.upper() in LETTERS else int(ans)})
    return docs


def _mmlu_local(cfg: MMLUTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[dict], dict]:
    root = Path(data_dir or ".")
    if cfg.format == "okapi":
        path = _need(root / "m_mmlu" / f"{lang.short}_{split}.json", "Okapi m_MMLU")
        return read_okapi(path), {"path": str(path.resolve()), "split": split}
    if lang.short != "en":
        raise ValueError(f"hendrycks_csv MMLU is English only; got {lang.flores}")
    folder = _need(root / "mmlu" / split, "MMLU CSV")
    paths = sorted(folder.glob(f"*_{split}.csv"))
    if cfg.subjects:
        paths = [p for p in paths if p.stem.rsplit("_", 1)[0] in cfg.subjects]
    if not paths:
        raise FileNotFoundError(f"MMLU CSV: no *_{split}.csv files in {folder}")
    return read_hendrycks(paths), {"path": str(folder.resolve()), "split": split, "files": len(paths)}


def build_mmlu(cfg: MMLUTask, lang: Language, tasks_dir: Path, data_dir: Path | None,
                first: int | None = None, pooled: bool = True) -> TaskSpec | None:
    if cfg.format == "global_mmlu":
        return TaskSpec(f"global_mmlu_full_{lang.short}", "mmlu", lang.flores, builtin=True,
                        source={"hub_id": "CohereLabs/Global-MMLU", "subset": lang.short, "split": "test",
                                "lm_eval_task": f"global_mmlu_full_{lang.short}"})
    if cfg.format == "mmmlu":
        if lang.short not in MMMLU_SLUGS:
            return None  # MMMLU has no such language
        slug = MMMLU_SLUGS[lang.short]
        return TaskSpec(f"mmmlu_{slug}", "mmlu", lang.flores, builtin=True,
                        source={"hub_id": "openai/MMMLU", "subset": slug.upper(), "split": "test",
                                "lm_eval_task": f"mmmlu_{slug}"})
    if cfg.format == "okapi" and cfg.source == "hub":
        return TaskSpec(f"m_mmlu_{lang.short}", "mmlu", lang.flores, builtin=True,
                        source={"hub_id": "alexandrainst/m_mmlu", "subset": lang.short, "split": "test",
                                "lm_eval_task": f"m_mmlu_{lang.short}"})
    if cfg.format == "hendrycks_csv" and lang.short != "en":
        return None
    split = cfg.split or ("val" if cfg.format == "okapi" else "test")
    test, source = _mmlu_local(cfg, lang, split, data_dir)
    fewshot = None
    if cfg.fewshot_split:
        try:
            fewshot, source["fewshot"] = _mmlu_local(cfg, lang, cfg.fewshot_split, data_dir)
        except FileNotFoundError:
            fewshot = None  # no dev split: few-shot examples come from the test split, as lm-eval does
    name = f"mlift_mmlu_{cfg.format.replace('_csv', '')}_{lang.flores}"
    for d in test + (fewshot or []):
        d["lang"] = lang.flores
    _write_task(tasks_dir, {
        "task": name, "tag": ["mlift_mmlu"], **_data_files(name, test, fewshot, first, pooled),
        "output_type": "multiple_choice",
        "doc_to_text": "{{question}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
        "doc_to_choice": list(LETTERS),
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "source": source},
    })
    return TaskSpec(name, "mmlu", lang.flores, source=source)


def build_tasks(tasks_dir: str | Path, langs: list[str], xlsum: XLSumTask | None = None, flores: FloresTask | None = None,
                mmlu: MMLUTask | None = None, data_dir: str | Path | None = None, limit: int | None = None,
                num_fewshot: int = 0, skipped: list[str] | None = None) -> list[TaskSpec]:
    """Write the task YAMLs (and their data) for `langs` into `tasks_dir`; return what was built, in order.
    `limit`/`num_fewshot`: the run's, so only the docs the run reads are materialised. A task the benchmark does not
    have for a language (XL-Sum has no German, MMMLU covers 14 languages) is skipped with a warning and appended to
    `skipped`, so the manifest says why a column is missing."""
    skipped = [] if skipped is None else skipped

    def skip(why: str) -> None:
        skipped.append(why)
        print(f"mlift eval: skipped {why}", file=sys.stderr)

    first, pooled = limit, num_fewshot > 0  # pooled: few-shot examples may come from the test split
    tasks_dir = Path(tasks_dir)
    tasks_dir.mkdir(parents=True, exist_ok=True)
    (tasks_dir / "utils.py").write_text(_UTILS, encoding="utf-8")
    data = Path(data_dir) if data_dir else None
    specs: list[TaskSpec] = []
    for code in langs:
        lang = get_language(code)
        if xlsum and not lang.xlsum:
            skip(f"xlsum {lang.flores}: XL-Sum has no {lang.name} subset (languages.tsv)")
        elif xlsum:
            specs.append(build_xlsum(xlsum, lang, tasks_dir, data, first, pooled))
        if flores:
            specs.extend(build_flores(flores, lang, tasks_dir, data, first, pooled))
        if mmlu:
            spec = build_mmlu(mmlu, lang, tasks_dir, data, first, pooled)
            if spec:
                specs.append(spec)
            else:
                skip(f"mmlu {lang.flores}: the {mmlu.format} benchmark has no {lang.name}")
    return specs


# Plain lm-eval can run the same tasks:
# Write mlift's lm-eval task YAMLs (one per language / direction) for an eval suite into a folder, so plain lm-eval
# can run them too:
#
#     python -m mlift.eval_tasks --suite recipes/eval/local_small.yaml --langs hi fr --out eval/generated
#     lm_eval --model hf --model_args pretrained=MODEL --device cpu --include_path eval/generated \\
#         --tasks mlift_xlsum_hin_Deva,mlift_flores_hin_Deva-eng_Latn --limit 5
#
# The YAMLs carry absolute `data_files` (lm-eval resolves relative ones against the current directory, not the YAML),
# so they are generated per machine rather than committed. `mlift eval` does the same into `<out>/tasks/`.
def main() -> None:
    from mlift.evaluate import EvalSuite
    from mlift.recipe import load_recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--langs", nargs="+", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    overrides = [f"data_dir={args.data_dir}"] if args.data_dir else []
    if args.langs:
        overrides.append(f"langs=[{', '.join(args.langs)}]")
    suite = load_recipe(args.suite, EvalSuite, overrides).cfg
    specs = build_tasks(args.out, suite.langs, suite.xlsum, suite.flores, suite.mmlu, suite.data_dir)
    for spec in specs:
        print(json.dumps(spec.to_json(), ensure_ascii=False))


if __name__ == "__main__":
    main()
