"""Multilingual MMLU tasks: local Okapi m_MMLU and Global-MMLU files run as lm-eval's own `m_mmlu_*` /
`global_mmlu_full_*` define them (the raw rows, their prompt, letter targets, first_n few-shot sampler; proven
item-for-item by tests/test_eval_mmlu.py), English MMLU CSVs on normalised docs, and the hub variants as lm-eval's
built-in tasks."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from mlift.eval.configs import write_task
from mlift.eval.spec import TaskSpec, data_files, evaluated, need
from mlift.eval.suite import MMLUTask
from mlift.languages import Language

LETTERS = "ABCD"
# lm-eval built-in task names per language (ISO 639-1 -> MMMLU locale slug)
MMMLU_SLUGS = {"ar": "ar_xy", "bn": "bn_bd", "de": "de_de", "es": "es_la", "fr": "fr_fr", "hi": "hi_in", "id": "id_id",
               "it": "it_it", "ja": "ja_jp", "ko": "ko_kr", "pt": "pt_br", "sw": "sw_ke", "yo": "yo_ng", "zh": "zh_cn"}
# lm-eval's own MMLU prompts (lm_eval/tasks/okapi/mmlu_multilingual/_default_yaml, global_mmlu/full/*/_*_template_yaml)
OKAPI_PROMPT = "{{instruction.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nAnswer:"
GLOBAL_MMLU_PROMPT = "{{question.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nAnswer:"
HENDRYCKS_PROMPT = "{{question}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"


def read_okapi(path: Path) -> list[dict]:
    """Okapi m_MMLU JSON (instruction, option_a..d, answer letter, id) -> normalised MMLU docs."""
    rows = json.loads(path.read_text(encoding="utf-8-sig"))
    return [{"id": str(r.get("id", i)), "question": r["instruction"].strip(),
             "choices": [str(r[f"option_{c}"]).strip() for c in "abcd"],
             "answer": LETTERS.index(str(r["answer"]).strip().upper())} for i, r in enumerate(rows)]


def read_hendrycks(paths: list[Path]) -> list[dict]:
    """Hendrycks-style CSVs (question, choice0..3, answer; the answer a 0-based index or a letter) -> MMLU docs."""
    docs = []
    for path in paths:
        subject = path.stem.rsplit("_", 1)[0]
        with path.open(encoding="utf-8-sig", newline="") as f:
            for i, r in enumerate(csv.DictReader(f)):
                ans = r["answer"].strip()
                docs.append({"id": f"{subject}-{i}", "subject": subject, "question": r["question"].strip(),
                             "choices": [r[f"choice{k}"].strip() for k in range(4)],
                             "answer": LETTERS.index(ans.upper()) if ans.upper() in LETTERS else int(ans)})
    return docs


OKAPI_FIELDS = ("instruction", "option_a", "option_b", "option_c", "option_d", "answer", "id")
GLOBAL_FIELDS = ("sample_id", "subject", "subject_category", "question", "option_a", "option_b", "option_c", "option_d",
                 "answer")


def read_rows(path: Path) -> list[dict]:
    """A JSON array or JSONL file of rows."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".jsonl":
        return [json.loads(x) for x in text.splitlines() if x.strip()]
    return json.loads(text)


def raw_rows(path: Path, fields: tuple[str, ...], lang: Language) -> list[dict]:
    """The benchmark's own rows (only its fields; values untouched, as lm-eval's built-in prompt renders them)."""
    rows = read_rows(path)
    missing = [f for f in ("answer", "option_a", "option_d") if rows and f not in rows[0]]
    if missing:
        raise ValueError(f"{path}: rows lack {', '.join(missing)} (not the expected MMLU format)")
    return [{**{f: r[f] for f in fields if f in r}, "lang": lang.flores} for r in rows]


def _local_file(root: Path, folder: str, lang: Language, split: str, what: str) -> Path:
    for ext in (".json", ".jsonl"):
        if (root / folder / f"{lang.short}_{split}{ext}").exists():
            return root / folder / f"{lang.short}_{split}{ext}"
    return need(root / folder / f"{lang.short}_{split}.json", what)


def _mmlu_local(cfg: MMLUTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[dict], dict]:
    root = Path(data_dir or ".")
    if cfg.format in ("okapi", "global_mmlu"):
        folder, fields, what = {"okapi": ("m_mmlu", OKAPI_FIELDS, "Okapi m_MMLU"),
                                "global_mmlu": ("global_mmlu", GLOBAL_FIELDS, "Global-MMLU")}[cfg.format]
        path = _local_file(root, folder, lang, split, what)
        return raw_rows(path, fields, lang), {"path": str(path.resolve()), "split": split}
    if lang.short != "en":
        raise ValueError(f"hendrycks_csv MMLU is English only; got {lang.flores}")
    folder = need(root / "mmlu" / split, "MMLU CSV")
    paths = sorted(folder.glob(f"*_{split}.csv"))
    if cfg.subjects:
        paths = [p for p in paths if p.stem.rsplit("_", 1)[0] in cfg.subjects]
    if not paths:
        raise FileNotFoundError(f"MMLU CSV: no *_{split}.csv files in {folder}")
    docs = [{**d, "lang": lang.flores} for d in read_hendrycks(paths)]
    return docs, {"path": str(folder.resolve()), "split": split, "files": len(paths)}


def build_mmlu(cfg: MMLUTask, lang: Language, tasks_dir: Path, data_dir: Path | None,
               first: int | None = None, pooled: bool = True) -> TaskSpec | None:
    if cfg.format == "global_mmlu" and cfg.source == "hub":
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
            fewshot = None  # no dev split: few-shot examples come from the test split, as lm-eval does: say so
            source["fewshot"] = {"split": split, "note": f"no {cfg.fewshot_split} split under the data dir: few-shot "
                                 f"examples are drawn from the evaluated {split} split (lm-eval leaves the question "
                                 "itself out)"}
            if pooled:
                print(f"mlift eval: note: mmlu {lang.flores}: {source['fewshot']['note']}", file=sys.stderr)
    name = mmlu_task_name(cfg.format, lang)
    data = data_files(name, evaluated(test, fewshot, first, pooled), fewshot)
    write_task(tasks_dir, mmlu_config(cfg.format, lang, data, {"source": source}))
    return TaskSpec(name, "mmlu", lang.flores, source=source)


def mmlu_task_name(fmt: str, lang: Language) -> str:
    return f"mlift_mmlu_{ {'okapi': 'okapi', 'global_mmlu': 'global', 'hendrycks_csv': 'hendrycks'}[fmt]}_{lang.flores}"


def mmlu_config(fmt: str, lang: Language, data: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """okapi and global_mmlu exactly as lm-eval's m_mmlu_* / global_mmlu_full_* define them (raw rows, their prompt,
    letter targets, first_n few-shot sampler); hendrycks_csv on mlift's normalised docs."""
    prompt = {"okapi": OKAPI_PROMPT, "global_mmlu": GLOBAL_MMLU_PROMPT, "hendrycks_csv": HENDRYCKS_PROMPT}[fmt]
    config: dict[str, Any] = {"task": mmlu_task_name(fmt, lang), "tag": ["mlift_mmlu"], **data}
    if fmt != "hendrycks_csv":
        config["fewshot_config"] = {"sampler": "first_n"}
    return {**config, "output_type": "multiple_choice", "doc_to_text": prompt, "doc_to_choice": ["A", "B", "C", "D"],
            "doc_to_target": "answer",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"version": 2.0, **metadata}}
