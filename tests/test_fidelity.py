"""Language fidelity on outputs in known languages: FLORES-200 devtest lines, checked against their own language and
against another one, through the project's lang-ID table (mlift.langid)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_path

from mlift.item_scores import in_language, task_items

N = 40


def lines(code: str) -> list[str]:
    return shared_path("data", "flores200", "devtest", f"{code}.devtest").read_text(encoding="utf-8").splitlines()[:N]


@pytest.mark.parametrize(("text_lang", "asked", "expect"), [
    ("hin_Deva", "hin_Deva", 1.0), ("fra_Latn", "fra_Latn", 1.0), ("zho_Hans", "zho_Hans", 1.0),
    ("arb_Arab", "arb_Arab", 1.0),
    ("eng_Latn", "hin_Deva", 0.0), ("spa_Latn", "fra_Latn", 0.0), ("deu_Latn", "fra_Latn", 0.0),
    ("fra_Latn", "eng_Latn", 0.0),
])
def test_share_in_the_asked_language(text_lang, asked, expect):
    share = sum(in_language(t, asked) for t in lines(text_lang)) / N
    assert share == pytest.approx(expect, abs=0.05)


def test_fidelity_items_from_lm_eval_samples(tmp_path):
    """A FLORES en->fr task whose 'model' answered in French for the first half and in Spanish for the rest."""
    fra, spa = lines("fra_Latn"), lines("spa_Latn")
    half = N // 2
    (tmp_path / "samples").mkdir()
    with (tmp_path / "samples" / "mlift_flores_eng_Latn-fra_Latn.jsonl").open("w", encoding="utf-8") as f:
        for i in range(N):
            out = fra[i] if i < half else spa[i]
            f.write(json.dumps({"doc_id": i, "doc": {"tgt_lang": "fra_Latn"}, "filtered_resps": [out]}) + "\n")
    task = {"name": "mlift_flores_eng_Latn-fra_Latn", "family": "flores", "lang": "fra_Latn", "direction": "en-xx"}
    rows = [r for r in task_items(tmp_path, task, ()) if r["metric"] == "fidelity"]
    assert len(rows) == N and all(r["asked"] == "fra_Latn" for r in rows)
    assert sum(r["stats"][0] for r in rows[:half]) >= half - 1 and sum(r["stats"][0] for r in rows[half:]) <= 1
