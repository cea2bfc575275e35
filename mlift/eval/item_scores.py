"""Per-item scores of an eval run, from lm-eval's samples (DIR/samples/TASK.jsonl), kept in DIR/items.jsonl so the
report can give intervals and paired tests without rescoring.

Each line is one (task, metric, doc): `stats` is what the metric aggregates. Mean metrics (ROUGE F1, accuracy,
language fidelity) keep the item's score (0-1); corpus metrics (chrF++, BLEU, spBLEU) keep sacrebleu's per-sentence
sufficient statistics, so a resample of items gives the corpus score of that resample exactly (sacrebleu's own paired
bootstrap does the same). Language fidelity (metric `fidelity`) is 1 when the output is in the language the task asked
for, by the project's lang-ID table (mlift.langid: the language's detector and script check), else 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

MEAN_METRICS = ("rouge1", "rouge2", "rougeL", "acc", "acc_norm", "exact_match", "fidelity")
CORPUS_METRICS = ("chrf++", "bleu", "spbleu")
ITEMS_FILE = "items.jsonl"


def kind(metric: str) -> str | None:
    """'mean' (score = 100 x mean of items), 'corpus' (score from summed statistics) or None (no per-item form)."""
    metric = metric.split("(")[0]  # exact_match(flexible-extract): the metric under an lm-eval filter
    return "mean" if metric in MEAN_METRICS else "corpus" if metric in CORPUS_METRICS else None


@cache
def _sacre(metric: str) -> Any:
    from sacrebleu.metrics import BLEU, CHRF

    if metric == "chrf++":
        return CHRF(word_order=2)
    if metric == "spbleu":
        from mlift.eval.metrics import _flores200_tokenizer

        _flores200_tokenizer()  # MetricResourceError offline, as in the eval
        return BLEU(tokenize="flores200")
    return BLEU(tokenize="13a")


def corpus_stats(metric: str, refs: list[str], preds: list[str]) -> list[list[float]]:
    """sacrebleu's per-sentence sufficient statistics for chrF++ / BLEU / spBLEU."""
    m = _sacre(metric)
    return [list(map(float, s)) for s in m._extract_corpus_statistics(preds, [refs])]


def corpus_score(metric: str, summed: list[float]) -> float:
    """The corpus score (0-100) from statistics summed over items."""
    return float(_sacre(metric)._compute_score_from_stats([int(round(x)) for x in summed]).score)


def score_fn(metric: str) -> Callable[[Any], float]:
    """stats (items x k array) -> the metric on the 0-100 scale the report shows."""
    if kind(metric) == "mean":
        return lambda stats: 100.0 * float(stats[:, 0].mean())
    return lambda stats: corpus_score(metric, stats.sum(axis=0).tolist())


def _read_samples(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _output(sample: dict[str, Any]) -> str:
    resp = sample.get("filtered_resps") or sample.get("resps") or [""]
    while isinstance(resp, list):
        resp = resp[0] if resp else ""
    return str(resp)


def asked_language(task: dict[str, Any], sample: dict[str, Any]) -> str | None:
    """The language a generative task asks its output in: XL-Sum the article's, FLORES the target's."""
    doc = sample.get("doc", {})
    if task["family"] == "xlsum":
        return doc.get("lang") or task["lang"]
    if task["family"] == "flores":
        return doc.get("tgt_lang")
    return None


@cache
def _checker(lang: str) -> Any:
    from mlift.langid import LanguageCheck

    return LanguageCheck(lang, unsupported="script")


def in_language(text: str, lang: str) -> bool:
    """Is `text` in `lang`, by the project's lang-ID table (detector of the language + script check)?"""
    return bool(text.strip()) and _checker(lang).check(text)[0]


def task_items(run_dir: Path, task: dict[str, Any], metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per-item rows of one task (a manifest `tasks` entry) for the metrics it has samples for."""
    samples = _task_samples(run_dir / "samples", task)
    if not samples:
        return []
    rows: list[dict[str, Any]] = []
    base = {"task": task["name"], "family": task["family"], "lang": task["lang"], "direction": task.get("direction")}
    by_filter: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_filter.setdefault(s.get("filter") or "none", []).append(s)
    for metric, filt in ((m, f) for m in metrics for f in by_filter):
        present = [s for s in by_filter[filt] if metric in s]
        if not present:
            continue
        name = metric if filt == "none" else f"{metric}({filt})"  # as evaluate.flat_table names it
        if kind(metric) == "corpus":
            from mlift.eval.metrics import MetricResourceError

            refs = [s[metric][0] for s in present]
            preds = [s[metric][1] for s in present]
            try:
                stats = corpus_stats(metric, refs, preds)
            except MetricResourceError:
                continue  # NaN in the table, no interval either
        elif metric.startswith("rouge"):
            stats = _rouge_items(metric, present)
        else:
            stats = [[float(s[metric])] for s in present]
        rows += [{**base, "metric": name, "doc_id": s["doc_id"], "stats": st} for s, st in zip(present, stats)]
    if task["family"] in ("xlsum", "flores"):
        for s in next(iter(by_filter.values())):
            lang = asked_language(task, s)
            if lang:
                rows.append({**base, "metric": "fidelity", "asked": lang, "doc_id": s["doc_id"],
                             "stats": [1.0 if in_language(_output(s), lang) else 0.0]})
    return rows


def _task_samples(sdir: Path, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's samples by doc; for an lm-eval group (e.g. global_mmlu_full_hi), those of its tasks (files named
    after the group), their doc ids made unique as `task:doc`; a sample per doc and lm-eval filter."""
    path = sdir / f"{task['name']}.jsonl"
    if path.is_file():
        files = [path]
    elif task.get("builtin"):
        files = sorted(sdir.glob(f"{task['name']}_*.jsonl"))
    else:
        return []
    out, seen = [], set()
    for f in files:
        for s in _read_samples(f):
            doc = s["doc_id"] if len(files) == 1 else f"{f.stem}:{s['doc_id']}"
            if (doc, s.get("filter")) not in seen:
                seen.add((doc, s.get("filter")))
                out.append({**s, "doc_id": doc})
    return sorted(out, key=lambda s: (str(type(s["doc_id"])), s["doc_id"]))


def _rouge_items(metric: str, samples: list[dict[str, Any]]) -> list[list[float]]:
    from mlift.eval import metrics

    by_mode: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(samples):
        item = s[metric]
        by_mode.setdefault((item[2], item[3] if len(item) > 3 else metrics.DEFAULT_ROUGE_MODE), []).append(i)
    out: list[list[float]] = [[math.nan]] * len(samples)
    for (lang, mode), idx in by_mode.items():
        refs = [samples[i][metric][0] for i in idx]
        preds = [samples[i][metric][1] for i in idx]
        for i, f in zip(idx, rouge_per_item(metric, preds, refs, lang, mode)):
            out[i] = [f]
    return out


def rouge_per_item(metric: str, preds: list[str], refs: list[str], lang: str, mode: str) -> list[float]:
    """Per-item ROUGE F1 (0-1) in the eval's mode; their mean x100 is the eval's score."""
    if mode == "xlsum":
        from mlift.eval import xlsum_rouge

        return [s[metric] for s in xlsum_rouge.scores(preds, refs, lang, (metric,))]
    from rouge_score import rouge_scorer

    from mlift.data.text import MultilingualTokenizer

    scorer = rouge_scorer.RougeScorer([metric], tokenizer=MultilingualTokenizer(lang))
    return [scorer.score(r, p)[metric].fmeasure for p, r in zip(preds, refs, strict=True)]


DEFAULT_METRICS = ("rouge1", "rouge2", "rougeL", "chrf++", "spbleu", "acc", "acc_norm", "exact_match")


def write_items(run_dir: str | Path, tasks: list[dict[str, Any]], metrics: tuple[str, ...] = DEFAULT_METRICS) -> Path:
    """Score every task's samples per item and write DIR/items.jsonl (atomically)."""
    import os

    run_dir = Path(run_dir)
    path = run_dir / ITEMS_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for task in tasks:
            for row in task_items(run_dir, task, metrics):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_items(run_dir: str | Path) -> list[dict[str, Any]]:
    """DIR/items.jsonl; written from the samples first when the run predates it (the manifest lists its tasks)."""
    run_dir = Path(run_dir)
    path = run_dir / ITEMS_FILE
    if not path.is_file():
        manifest = run_dir / "manifest.json"
        if not (run_dir / "samples").is_dir() or not manifest.is_file():
            return []
        tasks = json.loads(manifest.read_text(encoding="utf-8")).get("tasks", [])
        try:
            write_items(run_dir, tasks)
        except OSError:  # a read-only eval dir: score in memory, every time
            return [row for task in tasks for row in task_items(run_dir, task, DEFAULT_METRICS)]
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
