"""The judge's rating parser and the quality formula (mlift.generate.score) on realistic judge answers."""

from __future__ import annotations

import pytest

from mlift.generate.config import ScoreConfig
from mlift.generate.score import length_score, parse_rating, spearman, weight_effects

# What chat judges really answer to the packaged prompt (asked for "Rating: N"), and completion answers after "Rating:".
JUDGE_ANSWERS = [
    ("Rating: 4", 4),
    ("The response explains the right to education clearly, but it is short.\n\nRating: 4", 4),
    ("On a scale of 1 to 5, the response deserves a high mark.\nRating: 5", 5),  # not the "1" of the scale
    ("On a scale of 1 to 5, I'd give it a 3 out of 5.", 3),
    ("4/5 - relevant and mostly complete.", 4),
    ("Score: 2/5", 2),
    ("I would rate this response a 2, since it does not answer the question.", 2),
    ("**Rating:** 5", 5),
    ("Rating: 3\n\nExplanation: the answer is partly relevant; I first thought 2.", 3),
    (" 4\n", 4),  # completion mode: the text right after the prompt's "Rating:"
    ("5", 5),
]
UNPARSABLE = ["On a scale of 1 to 5, this response is good.", "The response is relevant.", "4.5", "15", "", None,
              "Rating: 1-5"]


@pytest.mark.parametrize(("answer", "rating"), JUDGE_ANSWERS)
def test_rating_is_read_from_what_the_prompt_asks_for(answer, rating):
    assert parse_rating(answer) == rating


@pytest.mark.parametrize("answer", UNPARSABLE)
def test_answers_without_a_rating_are_unparsable(answer):
    assert parse_rating(answer) is None


def test_prompts_ask_for_the_form_the_parser_reads():
    from mlift.prompts import render

    chat = render("score_chat", instruction="Q?", response="A.")
    assert 'Rating: N' in chat and parse_rating("Rating: 4") == 4
    completion = render("score_completion", instruction="Q?", response="A.")
    assert completion.rstrip().endswith("Rating:") and parse_rating(" 4") == 4


def test_unparsable_judge_answers_are_quarantined_and_counted(tmp_path, stories260k):
    """A real (tiny) judge that writes stories, not ratings: with no fallback every pair goes to quarantine with
    judge_unparsable and the answer; with a fallback the pair is kept and marked."""
    from pydantic import TypeAdapter

    from mlift.generate.score import ScoreStage
    from mlift.llm import make_llm
    from mlift.llm.base import LLMConfig
    from mlift.records import Record

    llm_cfg = TypeAdapter(LLMConfig).validate_python({"backend": "transformers", "model": str(stories260k), "batch_size": 4})
    recs = [Record(id=f"r{i}", lang="fra_Latn", fields={"fragment": "Tous les êtres humains naissent libres et égaux.",
                                                         "fragment_en": "All human beings are born free and equal.",
                                                         "instruction_en": f"What does article {i} say?"})
            for i in range(3)]
    strict = ScoreConfig(judge=llm_cfg, max_new_tokens=6, rating_fallback=None)
    out = ScoreStage(make_llm(llm_cfg, tmp_path, seed=0), strict, seed=0).process([Record(r.id, r.lang, dict(r.fields), {})
                                                                                 for r in recs])
    answers = [o.detail for o in out]
    assert [o.kind for o in out] == ["quarantine"] * 3, answers
    assert all(o.reason == "judge_unparsable" and "unparsable judge answer" in o.detail for o in out)
    lenient = strict.model_copy(update={"rating_fallback": 3, "min_quality": 0.0, "min_native_lang": 0.0})
    kept = ScoreStage(make_llm(llm_cfg, tmp_path, seed=0), lenient, seed=0).process(recs)
    assert all(o.record.meta["scores"]["rating_fallback"] for o in kept)


def test_length_component_grades_pairs_inside_the_allowed_range():
    assert length_score(0.15, 0.15) == 1.0
    assert 0 < length_score(0.6, 0.15) < length_score(0.3, 0.15) < 1.0  # both pass a (0.005, 1.0) filter, ranked
    assert length_score(0.0, 0.15) > 0


def test_each_weight_changes_the_ranking_and_the_effect_is_measured():
    """Pairs all with the same judge rating: the heuristics alone order them, and zeroing a weight changes the top."""
    cfg = ScoreConfig()
    scores = []
    for i in range(20):
        parts = {"judge": 0.75, "length": 1 - i / 40, "copy": (i * 7 % 20) / 20, "lang": 0.9 + (i % 3) / 40}
        q = sum(v * w for v, w in zip(parts.values(), (cfg.w_judge, cfg.w_length, cfg.w_copy, cfg.w_lang)))
        scores.append({"components": parts, "quality": q / (cfg.w_judge + cfg.w_length + cfg.w_copy + cfg.w_lang)})
    eff = weight_effects(scores, cfg, top=5)
    assert set(eff) == {"judge", "length", "copy", "lang"}
    assert eff["judge"]["spearman_with_quality"] is None  # constant component: no ranking information
    assert eff["judge"]["top_changed_when_zeroed"] == 0.0
    assert eff["copy"]["spearman_with_quality"] > 0.5 and eff["copy"]["top_changed_when_zeroed"] > 0
    assert eff["length"]["top_changed_when_zeroed"] > 0
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0 and spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_native_language_component_follows_the_recipes_langid_choice():
    """The score's P(L | native) uses fragments.langid as the recipe set it, per_language overrides included: the
    same Yoruba fragment scores by py3langid under `auto`, by its script under `script`, and 1 under `none`."""
    from mlift.generate.config import LangIDConfig
    from mlift.generate.fragments import langid_check
    from mlift.generate.score import native_score

    yoruba = "Gbogbo ènìyàn ni a bí ní òmìnira; iyì àti ẹ̀tọ́ kọ̀ọ̀kan sì dọ́gba."
    english = "All human beings are born free and equal in dignity and rights."
    auto = langid_check(LangIDConfig(), "yor_Latn")
    assert auto.method == "py3langid"
    assert native_score(auto, yoruba) > 0.5 > native_score(auto, english)
    by_script = langid_check(LangIDConfig(per_language={"yo": "script"}), "yor_Latn")
    assert native_score(by_script, english) == 1.0  # Latin script: the script check cannot tell them apart
    assert native_score(langid_check(LangIDConfig(per_language={"yor_Latn": "none"}), "yor_Latn"), english) == 1.0
    assert native_score(langid_check(LangIDConfig(enabled=False), "yor_Latn"), english) == 1.0
    assert native_score(langid_check(LangIDConfig(per_language={"yor_Latn": "script"}), "yor_Latn"), "Всем людям") == 0.0
