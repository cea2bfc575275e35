"""mlift.eval.metrics against the reference implementations (sacrebleu, rouge-score) on real text."""

from __future__ import annotations

import os

import pytest
import sacrebleu
from conftest import shared_path
from rouge_score import rouge_scorer
from sacrebleu.metrics import CHRF

from mlift.eval import metrics


def _corpus(n: int = 60) -> tuple[list[str], list[str]]:
    """FLORES French references and a degraded copy of them as 'predictions' (some words dropped or swapped)."""
    refs = shared_path("data", "flores200", "devtest", "fra_Latn.devtest").read_text(encoding="utf-8").splitlines()[:n]
    preds = []
    for i, ref in enumerate(refs):
        words = ref.split()
        if i % 3 == 0:
            words = words[: max(1, len(words) // 2)]
        elif i % 3 == 1:
            words = words[1:] + words[:1]
        preds.append(" ".join(words))
    return preds, refs


def test_chrfpp_and_bleu_equal_sacrebleu() -> None:
    preds, refs = _corpus()
    expect_chrf = CHRF(word_order=2).corpus_score(preds, [refs]).score
    expect_bleu = sacrebleu.corpus_bleu(preds, [refs]).score
    assert 10 < expect_bleu < 95  # a corpus where the metrics are informative, not 0 or 100
    assert metrics.chrf_pp(preds, refs) == pytest.approx(expect_chrf, abs=1e-9)
    assert metrics.bleu(preds, refs) == pytest.approx(expect_bleu, abs=1e-9)
    # chrF++ is not chrF: the word bigrams change the score
    assert metrics.chrf_pp(preds, refs) != pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score, abs=1e-6)


def test_spbleu_equals_sacrebleu_flores200() -> None:
    if not os.path.exists(metrics.spm_model_path()):
        pytest.skip(f"the FLORES-200 SentencePiece model is not at {metrics.spm_model_path()} and cannot be "
                    "downloaded offline; spBLEU equality needs it (the error path is tested below)")
    preds, refs = _corpus()
    expect = sacrebleu.corpus_bleu(preds, [refs], tokenize="flores200").score
    assert metrics.spbleu(preds, refs) == pytest.approx(expect, abs=1e-9)


def test_spbleu_missing_model_error_is_helpful(tmp_path, monkeypatch) -> None:
    from sacrebleu.tokenizers import tokenizer_spm

    # An empty sacrebleu directory and an unreachable proxy: the download really fails, online or not.
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    metrics._flores200_tokenizer.cache_clear()
    try:
        with pytest.raises(metrics.MetricResourceError) as err:
            metrics.spbleu(["a b c"], ["a b c"])
    finally:
        metrics._flores200_tokenizer.cache_clear()
    msg = str(err.value)
    assert str(tmp_path / "models" / "flores200sacrebleuspm") in msg
    assert "$SACREBLEU" in msg and "chrF++" in msg
    # the other metrics still run
    assert metrics.chrf_pp(["a b c"], ["a b c"]) == pytest.approx(100.0)


@pytest.mark.parametrize("lang,text", [
    ("hin_Deva", "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतंत्रता और समानता प्राप्त है।"),
    ("arb_Arab", "يولد جميع الناس أحراراً متساوين في الكرامة والحقوق."),
    ("zho_Hans", "人人生而自由，在尊严和权利上一律平等。"),
    ("tha_Thai", "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ"),
])
def test_rouge_non_latin_identical_is_100_disjoint_is_0(lang: str, text: str) -> None:
    for mode in metrics.ROUGE_MODES:
        assert metrics.rouge([text], [text], lang=lang, mode=mode) == pytest.approx(
            dict.fromkeys(metrics.ROUGE_TYPES, 100.0))
    # (the XL-Sum scorer is not asserted disjoint here: its jieba path keeps spaces as tokens, and they match)
    assert metrics.rouge(["Completely different words here"], [text], lang=lang, mode="unicode") == pytest.approx(
        dict.fromkeys(metrics.ROUGE_TYPES, 0.0))
    # rouge-score's own tokenizer sees nothing in these scripts: the reason this module exists
    assert rouge_scorer.RougeScorer(["rouge1"]).score(text, text)["rouge1"].fmeasure == 0.0


def test_rouge_partial_overlap_chinese_is_per_character() -> None:
    got = metrics.rouge(["人人生而自由"], ["人人生而平等"], lang="zh", types=("rouge1",), mode="unicode")["rouge1"]
    assert got == pytest.approx(100 * 4 / 6)


@pytest.mark.parametrize("lang,stem", [("eng_Latn", True), ("fra_Latn", False)])
def test_rouge_latin_matches_rouge_score(lang: str, stem: bool) -> None:
    preds = ["The cats were running quickly across the fields, didn't they?", "Paris is the capital of France.",
             "Les chats couraient rapidement dans les champs."]
    refs = ["A cat runs across the field quickly.", "The capital of France is Paris!", "Le chat court dans le champ."]
    scorer = rouge_scorer.RougeScorer(list(metrics.ROUGE_TYPES), use_stemmer=stem)
    expect = {t: 100 * sum(scorer.score(r, p)[t].fmeasure for p, r in zip(preds, refs, strict=True)) / len(preds)
              for t in metrics.ROUGE_TYPES}
    assert metrics.rouge(preds, refs, lang=lang, mode="unicode") == pytest.approx(expect)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metrics.bleu(["a", "b"], ["a"])
