"""Language fidelity on outputs in known languages: FLORES-200 devtest lines, checked against their own language and
against another one, through the project's lang-ID table (mlift.langid)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import shared_path

from mlift.eval.item_scores import in_language, task_items

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


def test_judge_report_shows_fidelity_of_the_judged_answers(tmp_path):
    """judge-report reads model A's answers from the judge dir's recorded recipe. The judge dir here is written by hand
    (scores.json as `mlift judge` writes it; running a judge is not what is tested), the answers are FLORES lines:
    Hindi prompts answered half in Hindi, half in English; French prompts all in French."""
    from mlift.report.judge import make_judge_report

    hin, eng, fra = lines("hin_Deva"), lines("eng_Latn"), lines("fra_Latn")
    answers = tmp_path / "answers.jsonl"
    rows = [{"id": str(i), "lang": "hin_Deva", "instruction": "?", "response": hin[i] if i < 20 else eng[i]}
            for i in range(N)] + [{"id": str(i), "lang": "fra_Latn", "instruction": "?", "response": fra[i]}
                                  for i in range(N)]
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    judge_dir = tmp_path / "judge"
    judge_dir.mkdir()
    score = {"score": 0.5, "score_pct": 50.0, "win": 0, "tie": 1, "loss": 0, "n": 1}
    (judge_dir / "scores.json").write_text(json.dumps({
        "model_a": "answers", "model_b": "b", "references": None, "unparsed": 0,
        "scores": {"hin_Deva": score, "fra_Latn": score, "all": score},
        "recipe": {"resolved": {"model_a": {"path": str(answers)}}}}))
    make_judge_report([f"pinch-P10@1={judge_dir}"], tmp_path / "out")
    md = (tmp_path / "out" / "judge_table.md").read_text(encoding="utf-8")
    row = next(x for x in md.split("## Language fidelity")[1].splitlines() if x.startswith("| pinch-P10"))
    fra_cell, hin_cell = [c.strip() for c in row.strip("|").split("|")[1:]]  # languages sorted: fra, hin
    assert fra_cell.startswith("100.0 [100.0, 100.0]")
    value, lo, hi = map(float, re.findall(r"[\d.]+", hin_cell))
    assert value == 50.0 and 30 < lo < 50 < hi < 70
