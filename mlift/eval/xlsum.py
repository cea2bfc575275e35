"""XL-Sum: its documents (local JSONL or the hub's parquet export), its lm-eval config and its task builder. The
metric hooks it names (ROUGE as the XL-Sum authors compute it) are in mlift/eval/hooks.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlift.eval.configs import FEWSHOT_DELIMITER, Fn, gen_settings, write_task
from mlift.eval.spec import Generation, TaskSpec, data_files, evaluated, hub_rows, need
from mlift.eval.suite import XLSumTask
from mlift.languages import Language, get_language

XLSUM_PROMPT = "Summarize the following article in one sentence in {name}.\n\nArticle: {{{{text}}}}\n\nSummary:"
XLSUM = "csebuetnlp/xlsum"


def xlsum_config(lang: Language, data: dict[str, Any], until: list[str], max_gen_toks: int,
                 metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": f"mlift_xlsum_{lang.flores}", "tag": ["mlift_xlsum"], **data,
        "output_type": "generate_until",
        "doc_to_text": XLSUM_PROMPT.format(name=lang.name),
        "doc_to_target": " {{summary}}",
        "target_delimiter": "",
        "fewshot_delimiter": FEWSHOT_DELIMITER,
        "generation_kwargs": gen_settings(until, max_gen_toks),
        "process_results": Fn("xlsum_process_results"),
        "metric_list": [{"metric": m, "aggregation": Fn(f"agg_{m}"), "higher_is_better": True}
                        for m in ("rouge1", "rouge2", "rougeL")],
        "metadata": {"version": 2.0, **metadata},
    }


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


def xlsum_hub_docs(dataset: Any, lang: str) -> Any:
    language = get_language(lang)
    return dataset.map(lambda row: xlsum_docs([row], language)[0], remove_columns=dataset.column_names)


def xlsum_hub_dataset(lang: str, **_: Any) -> Any:
    """`custom_dataset` hook: XL-Sum's test and train splits of `lang` through mlift.data.hub, which reads main or, where
    main is a loading script (as csebuetnlp/xlsum is on the hub; datasets>=4 refuses it), the parquet export."""
    import datasets

    from mlift.data.hub import load_config

    subset = get_language(lang).xlsum
    return datasets.DatasetDict({split: load_config(XLSUM, subset, split)[0] for split in ("test", "train")})
