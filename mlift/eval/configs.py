"""The lm-eval task configs of mlift's families (prompt, targets, stops, metrics), one function per family, used both
for the per-run tasks on local data (mlift.eval.tasks) and for the committed hub tasks in eval/ (mlift.eval.hub), so
the two never differ in anything but where the data comes from and the generation budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlift.languages import Language

XLSUM_PROMPT = "Summarize the following article in one sentence in {name}.\n\nArticle: {{{{text}}}}\n\nSummary:"
FLORES_PROMPT = "Translate from {src} to {tgt}.\n{src}: {{{{src}}}}\n{tgt}:"
# lm-eval's own MMLU prompts (lm_eval/tasks/okapi/mmlu_multilingual/_default_yaml, global_mmlu/full/*/_*_template_yaml)
OKAPI_PROMPT = "{{instruction.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nAnswer:"
GLOBAL_MMLU_PROMPT = "{{question.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\nD. {{option_d}}\nAnswer:"
HENDRYCKS_PROMPT = "{{question}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
FEWSHOT_DELIMITER = "\n\n"
COMPLETION_STOPS = {"xlsum": ["\n\n"], "flores": ["\n"]}  # summaries may be multi-line; FLORES is one sentence


class Fn(str):
    """A `!function utils.<name>` value in a task YAML."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Fn, lambda d, v: d.represent_scalar("!function", f"utils.{v}"))


def dump(config: dict[str, Any]) -> str:
    return yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def write_task(tasks_dir: Path, config: dict[str, Any]) -> None:
    (tasks_dir / f"{config['task']}.yaml").write_text(dump(config), encoding="utf-8")


def _gen(until: list[str], max_gen_toks: int) -> dict[str, Any]:
    return {"until": list(until), "max_gen_toks": int(max_gen_toks), "do_sample": False}


def xlsum_config(lang: Language, data: dict[str, Any], until: list[str], max_gen_toks: int,
                 metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": f"mlift_xlsum_{lang.flores}", "tag": ["mlift_xlsum"], **data,
        "output_type": "generate_until",
        "doc_to_text": XLSUM_PROMPT.format(name=lang.name),
        "doc_to_target": " {{summary}}",
        "target_delimiter": "",
        "fewshot_delimiter": FEWSHOT_DELIMITER,
        "generation_kwargs": _gen(until, max_gen_toks),
        "process_results": Fn("xlsum_process_results"),
        "metric_list": [{"metric": m, "aggregation": Fn(f"agg_{m}"), "higher_is_better": True}
                        for m in ("rouge1", "rouge2", "rougeL")],
        "metadata": {"version": 2.0, **metadata},
    }


def flores_config(src: Language, tgt: Language, data: dict[str, Any], until: list[str], max_gen_toks: int,
                  metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": f"mlift_flores_{src.flores}-{tgt.flores}", "tag": ["mlift_flores"], **data,
        "output_type": "generate_until",
        "doc_to_text": FLORES_PROMPT.format(src=src.name, tgt=tgt.name),
        "doc_to_target": " {{tgt}}",
        "target_delimiter": "",
        "fewshot_delimiter": FEWSHOT_DELIMITER,
        "generation_kwargs": _gen(until, max_gen_toks),
        "process_results": Fn("flores_process_results"),
        "metric_list": [{"metric": "bleu", "aggregation": Fn("agg_bleu"), "higher_is_better": True},
                        {"metric": "spbleu", "aggregation": Fn("agg_spbleu"), "higher_is_better": True},
                        {"metric": "chrf++", "aggregation": Fn("agg_chrfpp"), "higher_is_better": True}],
        "metadata": {"version": 2.0, **metadata},
    }


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
