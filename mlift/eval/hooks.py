"""Functions lm-eval task YAMLs call through `!function utils.<name>` (eval/utils.py re-exports this module).

Generation tasks return one (reference, prediction, lang[, rouge_mode]) item per metric from `process_results`; the
aggregations compute corpus-level scores with mlift.eval.metrics. XL-Sum docs carry their `rouge_mode` (written by the task
builder; default: the XL-Sum authors' scorer). A metric whose resource is missing (spBLEU offline) logs the reason and
scores NaN, so the other metrics of the run still come out.
"""

from __future__ import annotations

import logging
import math

from mlift.eval import metrics

log = logging.getLogger("mlift.eval")

Item = tuple[str, ...]  # (reference, prediction, lang) or, for ROUGE, (reference, prediction, lang, rouge_mode)
_warned: set[str] = set()


def _clean(prediction: str) -> str:
    """The whole answer (lm-eval's stop sequences already ended it), minus a known preamble: a chat answer's short
    opening line that ends in ':' ("Here is the summary:") when more text follows."""
    text = prediction.strip()
    first, _, rest = text.partition("\n")
    if rest.strip() and len(first) <= 80 and first.rstrip().endswith(":"):
        return rest.strip()
    return text


def xlsum_process_results(doc: dict, results: list[str]) -> dict[str, Item]:
    item = (doc["summary"], _clean(results[0]), doc["lang"], doc.get("rouge_mode") or metrics.DEFAULT_ROUGE_MODE)
    return {name: item for name in metrics.ROUGE_TYPES}


def flores_process_results(doc: dict, results: list[str]) -> dict[str, Item]:
    item = (doc["tgt"], _clean(results[0]), doc["tgt_lang"])
    return {"bleu": item, "spbleu": item, "chrf++": item}


def _corpus(name: str, items: list[Item]) -> float:
    refs = [i[0] for i in items]
    preds = [i[1] for i in items]
    lang = items[0][2] if items else None
    mode = items[0][3] if items and len(items[0]) > 3 else metrics.DEFAULT_ROUGE_MODE
    try:
        return metrics.corpus_metric(name, refs, preds, lang=lang, rouge_mode=mode)
    except metrics.MetricResourceError as exc:
        if name not in _warned:  # once per process, not once per task
            log.warning("%s not computed: %s", name, exc)
            _warned.add(name)
        return math.nan


def agg_rouge1(items: list[Item]) -> float:
    return _corpus("rouge1", items)


def agg_rouge2(items: list[Item]) -> float:
    return _corpus("rouge2", items)


def agg_rougeL(items: list[Item]) -> float:  # noqa: N802 - the metric's conventional name
    return _corpus("rougeL", items)


def agg_bleu(items: list[Item]) -> float:
    return _corpus("bleu", items)


def agg_spbleu(items: list[Item]) -> float:
    return _corpus("spbleu", items)


def agg_chrfpp(items: list[Item]) -> float:
    return _corpus("chrf++", items)
