"""FLORES-200 (both directions): its sentences (local devtest files or openlanguagedata/flores_plus), its lm-eval
config and its task builder. spBLEU / chrF++ hooks are in mlift/eval/hooks.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlift.eval.configs import FEWSHOT_DELIMITER, Fn, gen_settings, write_task
from mlift.eval.spec import Generation, TaskSpec, data_files, evaluated, hub_rows, need
from mlift.eval.suite import FloresTask
from mlift.languages import Language, get_language

FLORES_PROMPT = "Translate from {src} to {tgt}.\n{src}: {{{{src}}}}\n{tgt}:"
FLORES_PLUS = "openlanguagedata/flores_plus"
# FLORES+ renamed the Chinese subsets (FLORES-200 zho_* -> FLORES+ cmn_*); mlift keeps FLORES-200 codes as ids
FLORES_PLUS_SUBSET = {"zho_Hans": "cmn_Hans", "zho_Hant": "cmn_Hant"}
PIVOT = "eng_Latn"


def flores_config(src: Language, tgt: Language, data: dict[str, Any], until: list[str], max_gen_toks: int,
                  metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": f"mlift_flores_{src.flores}-{tgt.flores}", "tag": ["mlift_flores"], **data,
        "output_type": "generate_until",
        "doc_to_text": FLORES_PROMPT.format(src=src.name, tgt=tgt.name),
        "doc_to_target": " {{tgt}}",
        "target_delimiter": "",
        "fewshot_delimiter": FEWSHOT_DELIMITER,
        "generation_kwargs": gen_settings(until, max_gen_toks),
        "process_results": Fn("flores_process_results"),
        "metric_list": [{"metric": "bleu", "aggregation": Fn("agg_bleu"), "higher_is_better": True},
                        {"metric": "spbleu", "aggregation": Fn("agg_spbleu"), "higher_is_better": True},
                        {"metric": "chrf++", "aggregation": Fn("agg_chrfpp"), "higher_is_better": True}],
        "metadata": {"version": 2.0, **metadata},
    }


def _flores_lines(cfg: FloresTask, lang: Language, split: str, data_dir: Path | None) -> tuple[list[str], dict]:
    if cfg.source == "hub":
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


def flores_subset(lang: Language) -> str:
    return FLORES_PLUS_SUBSET.get(lang.flores, lang.flores)


def flores_hub_docs(dataset: Any, src: str, tgt: str) -> Any:
    """`dataset` is the source language's FLORES+ split; the target side is the same split of the other subset,
    aligned by id."""
    import datasets

    s, t = get_language(src), get_language(tgt)
    other = datasets.load_dataset(FLORES_PLUS, flores_subset(t), split=str(dataset.split))
    tgt_text = {int(r["id"]): r["text"] for r in other}
    rows = sorted(dataset, key=lambda r: int(r["id"]))
    return datasets.Dataset.from_list([
        {"id": int(r["id"]), "src": r["text"], "tgt": tgt_text[int(r["id"])], "src_lang": s.flores,
         "tgt_lang": t.flores, "src_name": s.name, "tgt_name": t.name} for r in rows])
