"""Multilingual generation metrics: ROUGE, BLEU, spBLEU (FLORES-200 SentencePiece) and chrF++. All scores are on a
0-100 scale, corpus-level, and take parallel lists of predictions and references.

ROUGE has two modes (`ROUGE_MODES`):
- "xlsum" (the default): the XL-Sum authors' scorer (mlift.eval.xlsum_rouge), so scores can be set beside published XL-Sum
  numbers: per-language segmenters and stemmers, F-measure averaged over examples.
- "unicode": rouge-score with a Unicode-aware tokenizer, for when the reference scorer is not wanted: tokens are runs of
  letters/marks/digits in any script, lowercased; scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar,
  Tibetan) become one token per character; Porter stemming for English only. (rouge-score's own tokenizer keeps only
  [a-z0-9], so every non-Latin script would score ~0: evaluate#256.)
"""

from __future__ import annotations

import os
from functools import cache

from mlift.data.text import MultilingualTokenizer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_MODES = ("xlsum", "unicode")
DEFAULT_ROUGE_MODE = "xlsum"


class MetricResourceError(RuntimeError):
    """A metric needs a resource that is not available (e.g. offline); the message says what to do."""


def rouge(predictions: list[str], references: list[str], lang: str | None = None,
          types: tuple[str, ...] = ROUGE_TYPES, stem: bool | None = None,
          mode: str = DEFAULT_ROUGE_MODE) -> dict[str, float]:
    """Mean per-example ROUGE F1 (x100) for each type in `types`. `stem` applies to mode "unicode" only (the XL-Sum
    scorer always stems where it has a stemmer for the language, as the authors' scripts do)."""
    _check_parallel(predictions, references)
    if mode == "xlsum":
        from mlift.eval import xlsum_rouge

        try:
            per_example = xlsum_rouge.scores(predictions, references, lang, tuple(types))
        except xlsum_rouge.ScorerMissingError as exc:
            raise MetricResourceError(str(exc)) from exc
        n = max(len(per_example), 1)
        return {t: 100.0 * sum(s[t] for s in per_example) / n for t in types}
    if mode != "unicode":
        raise ValueError(f"unknown rouge mode {mode!r} (known: {', '.join(ROUGE_MODES)})")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(types), tokenizer=MultilingualTokenizer(lang, stem))
    totals = dict.fromkeys(types, 0.0)
    for pred, ref in zip(predictions, references, strict=True):
        scores = scorer.score(ref, pred)
        for t in types:
            totals[t] += scores[t].fmeasure
    n = max(len(predictions), 1)
    return {t: 100.0 * v / n for t, v in totals.items()}


def bleu(predictions: list[str], references: list[str], tokenize: str = "13a") -> float:
    import sacrebleu

    _check_parallel(predictions, references)
    return sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize).score


def chrf_pp(predictions: list[str], references: list[str]) -> float:
    """chrF++ (character n-grams up to 6 plus word n-grams up to 2, beta=2)."""
    from sacrebleu.metrics import CHRF

    _check_parallel(predictions, references)
    return CHRF(word_order=2).corpus_score(predictions, [references]).score


def spm_model_path() -> str:
    """Where sacrebleu looks for the FLORES-200 SentencePiece model before trying to download it."""
    from sacrebleu.tokenizers import tokenizer_spm

    return os.path.join(tokenizer_spm.SACREBLEU_DIR, "models", "flores200sacrebleuspm")


def spbleu(predictions: list[str], references: list[str]) -> float:
    """spBLEU: BLEU over FLORES-200 SentencePiece pieces. Raises MetricResourceError when the SPM model is missing
    and cannot be downloaded."""
    import sacrebleu

    _check_parallel(predictions, references)
    _flores200_tokenizer()
    return sacrebleu.corpus_bleu(predictions, [references], tokenize="flores200").score


@cache
def _flores200_tokenizer():
    from sacrebleu.tokenizers.tokenizer_spm import Flores200Tokenizer

    path = spm_model_path()
    try:
        return Flores200Tokenizer()
    except ImportError as exc:
        raise MetricResourceError(f"spBLEU needs sentencepiece: pip install sentencepiece ({exc})") from exc
    except OSError as exc:  # URLError is an OSError; so is a half-written file
        raise MetricResourceError(
            f"spBLEU needs the FLORES-200 SentencePiece model at {path}; sacrebleu tried to download it "
            f"(https://tinyurl.com/flores200sacrebleuspm) and failed: {exc}. Fix: run once with internet access, or "
            f"copy the file 'flores200sacrebleuspm' to {path} (set $SACREBLEU to choose the directory). "
            "The other metrics (BLEU, chrF++) do not need it and are still computed.") from exc


def bleu_tokenizer(lang: str | None) -> str:
    """sacrebleu's tokenizer for BLEU into `lang` (a FLORES code): 13a splits on spaces and punctuation, so Chinese
    and Japanese, written without spaces, would be scored as whole sentences. Chinese: sacrebleu's `zh`; Japanese:
    `ja-mecab` where its extra is installed (pip install 'sacrebleu[ja]'), else characters (`char`)."""
    script = (lang or "").split("_")[0]
    if script == "zho":
        return "zh"
    if script == "jpn":
        return "ja-mecab" if _has_mecab() else "char"
    return "13a"


@cache
def _has_mecab() -> bool:
    try:
        from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab

        TokenizerJaMecab()
        return True
    except (ImportError, RuntimeError):
        return False


def _check_parallel(predictions: list[str], references: list[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


# Names of generation metrics the eval tasks report, and how each is computed from (reference, prediction) pairs.
def corpus_metric(name: str, refs: list[str], preds: list[str], lang: str | None = None,
                  rouge_mode: str = DEFAULT_ROUGE_MODE) -> float:
    if name in ROUGE_TYPES:
        return rouge(preds, refs, lang=lang, types=(name,), mode=rouge_mode)[name]
    if name == "bleu":
        return bleu(preds, refs, tokenize=bleu_tokenizer(lang))
    if name == "spbleu":
        return spbleu(preds, refs)
    if name == "chrf++":
        return chrf_pp(preds, refs)
    raise ValueError(f"unknown metric {name!r} (known: {', '.join((*ROUGE_TYPES, 'bleu', 'spbleu', 'chrf++'))})")


def rouge_provenance(langs: list[str], mode: str = DEFAULT_ROUGE_MODE) -> dict:
    """How ROUGE was computed, for manifests and the report: mode, scorer and version, and per language the
    segmenter/stemmer used (with what deviates from the XL-Sum authors' setup here)."""
    if mode == "unicode":
        from importlib.metadata import version

        return {"mode": mode, "scorer": f"rouge-score {version('rouge-score')} + mlift unicode tokenizer",
                "aggregate": "mean F1 over examples", "stemming": "porter for English only"}
    from mlift.eval import xlsum_rouge

    try:
        per_lang = {lang: xlsum_rouge.setup(lang).to_json() for lang in langs}
    except xlsum_rouge.ScorerMissingError as exc:
        per_lang = {"error": str(exc)}
    return {"mode": mode, "scorer": xlsum_rouge.scorer_version(), "aggregate": "mean F1 over examples "
            "(the XL-Sum scripts print the bootstrap mid: mlift.eval.xlsum_rouge.bootstrap)", "langs": per_lang}
