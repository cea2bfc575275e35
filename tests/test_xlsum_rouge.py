"""XL-Sum ROUGE agrees with the XL-Sum authors' scorer (multilingual_rouge's RougeScorer, `lang=<XL-Sum name>,
use_stemmer=True`) on real XL-Sum articles of every language in ../shared, through mlift.eval.metrics and through the
functions `mlift eval`'s tasks call; the "unicode" mode, which does not follow the reference, is shown to disagree."""

from __future__ import annotations

import json
import re
import warnings
from functools import partial
from pathlib import Path

import pytest
from conftest import SHARED, shared_path

from mlift.eval import hooks as eval_hooks
from mlift.eval import metrics, xlsum_rouge
from mlift.languages import get_language

TYPES = metrics.ROUGE_TYPES
_SENT_END = re.compile(r"(?<=[.!?।。！？])\s*")


def _lead(text: str, k: int) -> str:
    return " ".join([s for s in _SENT_END.split(" ".join(text.split())) if s.strip()][:k])


def _pairs(root: Path, language: str) -> tuple[list[str], list[str]]:
    """Lead-1 and lead-3 summaries of every article of the language (all splits), with the gold summaries."""
    preds, refs = [], []
    for path in sorted(root.glob(f"{language}_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for k in (1, 3):
                preds.append(_lead(row["text"], k))
                refs.append(row["summary"])
    return preds, refs


def _reference(language: str, monkeypatch) -> object:
    from multilingual_rouge import rouge_scorer, stemmers
    from nltk.stem import SnowballStemmer

    if not xlsum_rouge.have_nltk_stopwords():  # the one setting that needs a download: the stopword exemption
        for name in SnowballStemmer.languages:
            monkeypatch.setitem(stemmers.LANG2STEMMER, name, partial(stemmers.NLTKStemmer, name, ignore_stopwords=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return rouge_scorer.RougeScorer(list(TYPES), use_stemmer=True, lang=language)
        except RuntimeError:  # fugashi found the full `unidic` package (pulled in by fugashi[unidic]) undownloaded
            import unidic
            import unidic_lite

            monkeypatch.setattr(unidic, "DICDIR", unidic_lite.DICDIR)  # the dictionary that is installed
            return rouge_scorer.RougeScorer(list(TYPES), use_stemmer=True, lang=language)


def _means(scorer, preds: list[str], refs: list[str]) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = [scorer.score(r, p) for p, r in zip(preds, refs, strict=True)]
    return {t: 100.0 * sum(s[t].fmeasure for s in per) / len(per) for t in TYPES}


def _languages() -> list[str]:
    root = SHARED / "data" / "xlsum"  # at collection time: no languages (the test is skipped) when ../shared is absent
    return sorted({p.name.rsplit("_", 1)[0] for p in root.glob("*_test.jsonl")})


@pytest.fixture(scope="module")
def xlsum_dir() -> Path:
    return shared_path("data", "xlsum")


def test_every_shared_language_is_checked(xlsum_dir):
    assert len(_languages()) >= 9  # the test below is parametrised over the same listing


@pytest.mark.parametrize("language", _languages())
def test_agrees_with_the_xlsum_authors_scorer(language, xlsum_dir, monkeypatch):
    preds, refs = _pairs(xlsum_dir, language)
    assert len(preds) >= 20 and all(preds)
    ref = _means(_reference(language, monkeypatch), preds, refs)
    code = get_language(language).flores  # mlift's own code: the XL-Sum name is looked up, not passed through
    ours = metrics.rouge(preds, refs, lang=code)
    assert ours == pytest.approx(ref, abs=0.01)
    # the path `mlift eval` takes: the task's process_results, then its aggregation functions
    items = [eval_hooks.xlsum_process_results({"summary": r, "lang": code, "rouge_mode": "xlsum"}, [p])["rougeL"]
             for p, r in zip(preds, refs, strict=True)]
    via_eval = {"rouge1": eval_hooks.agg_rouge1(items), "rouge2": eval_hooks.agg_rouge2(items),
                "rougeL": eval_hooks.agg_rougeL(items)}
    assert via_eval == pytest.approx(ref, abs=0.01)


@pytest.mark.parametrize("language", ["russian", "arabic", "chinese_simplified", "japanese"])
def test_the_unicode_mode_does_not_follow_the_reference(language, xlsum_dir, monkeypatch):
    """The same check on the old tokenizer fails by points: it is not a check that cannot fail."""
    preds, refs = _pairs(xlsum_dir, language)
    ref = _means(_reference(language, monkeypatch), preds, refs)
    before = metrics.rouge(preds, refs, lang=get_language(language).flores, mode="unicode")
    assert max(abs(before[t] - ref[t]) for t in TYPES) > 1.0


def test_setup_records_what_was_used():
    ru = xlsum_rouge.setup("rus_Cyrl")
    assert (ru.lang, ru.segmenter, ru.stemmer) == ("russian", "pyonmttok-aggressive+cjk-chars", "nltk-snowball-russian")
    assert any("ignore_stopwords=False" in n for n in ru.notes) != xlsum_rouge.have_nltk_stopwords()
    assert xlsum_rouge.setup("zh").lang == "chinese" and xlsum_rouge.setup("zh").segmenter == "jieba"
    assert xlsum_rouge.setup("jpn_Jpan").segmenter == "fugashi+unidic-lite"
    assert xlsum_rouge.setup("hi").stemmer == "hindi-stemmer" and xlsum_rouge.setup("sw").stemmer is None
    prov = metrics.rouge_provenance(["hin_Deva", "ben_Beng"])
    assert prov["mode"] == "xlsum" and prov["scorer"].startswith("multilingual-rouge 0.0.")
    assert set(prov["langs"]) == {"hin_Deva", "ben_Beng"}


def test_bengali_scores_without_its_missing_rules_file_and_says_so():
    bn = xlsum_rouge.setup("ben_Beng")
    text = "সকল মানুষ স্বাধীনভাবে সমান মর্যাদা এবং অধিকার নিয়ে জন্মগ্রহণ করে।"
    assert metrics.rouge([text], [text], lang="ben_Beng")["rougeL"] == pytest.approx(100.0)
    rules = Path(__import__("multilingual_rouge").__file__).parent / "bengali_stemmer" / "common.rules"
    if rules.exists():
        assert bn.stemmer == "bengali-stemmer"
    else:
        assert bn.stemmer is None and any("common.rules" in n for n in bn.notes)


def test_bootstrap_mid_is_seeded_and_near_the_mean(xlsum_dir):
    preds, refs = _pairs(xlsum_dir, "hindi")
    mean = metrics.rouge(preds, refs, lang="hi")
    a = xlsum_rouge.bootstrap(preds, refs, "hi", TYPES, seed=1)
    assert a == xlsum_rouge.bootstrap(preds, refs, "hi", TYPES, seed=1)
    for t in TYPES:
        low, mid, high = a[t]
        assert low <= mid <= high and abs(mid - mean[t]) < 2.0


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="unknown rouge mode 'porter'"):
        metrics.rouge(["a"], ["a"], mode="porter")
