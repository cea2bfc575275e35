"""Small eval defects of issue 18 item 6: MMLU few-shot examples that fall back to the evaluated split are said so
(manifest source + console)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_path

from mlift.eval.mmlu import build_mmlu
from mlift.eval.suite import MMLUTask
from mlift.languages import get_language


def test_mmlu_fewshot_from_the_test_split_is_noted(tmp_path: Path, capsys) -> None:
    data = shared_path("data")
    spec = build_mmlu(MMLUTask(format="okapi", fewshot_split="train"), get_language("fr"), tmp_path, data,
                      first=2, pooled=True)  # m_mmlu has dev and val, no train
    note = spec.source["fewshot"]
    assert note["split"] == "val" and "no train split" in note["note"]
    assert "no train split" in capsys.readouterr().err
    assert "fewshot" in spec.to_json()["source"]  # what the eval manifest records
    with_dev = build_mmlu(MMLUTask(format="okapi"), get_language("fr"), tmp_path, data, first=2, pooled=True)
    assert "note" not in with_dev.source["fewshot"]


@pytest.mark.parametrize(("lang", "tokenize"), [("zho_Hans", "zh"), ("jpn_Jpan", None), ("fra_Latn", "13a")])
def test_bleu_segments_chinese_and_japanese_targets(lang: str, tokenize: str | None) -> None:
    """13a splits on spaces: a Chinese or Japanese sentence would be one "word". BLEU into them uses sacrebleu's
    own tokenizer for the language (ja-mecab where installed, else characters), compared with sacrebleu itself."""
    import sacrebleu

    from mlift.eval.metrics import bleu_tokenizer, corpus_metric

    refs = shared_path("data", "flores200", "devtest", f"{lang}.devtest").read_text(encoding="utf-8").splitlines()[:4]
    preds = [r[: len(r) // 2] + r[len(r) // 2 + 3:] for r in refs]  # three characters dropped mid-sentence
    tokenize = tokenize or bleu_tokenizer(lang)
    assert tokenize in {"zh", "ja-mecab", "char", "13a"}
    expected = sacrebleu.corpus_bleu(preds, [refs], tokenize=tokenize).score
    assert corpus_metric("bleu", refs, preds, lang=lang) == pytest.approx(expected)
    if lang != "fra_Latn":  # what 13a gives: near zero, each sentence one token that no longer matches
        assert sacrebleu.corpus_bleu(preds, [refs], tokenize="13a").score < expected / 2
