"""The pairwise judge: verdict parsing, the both-orders rule, the arithmetic, and one real end-to-end judge run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlift.cli import main as cli_main
from mlift.judge.pairwise import aggregate, combine, exclusion, judge_prompts, parse_verdict, read_verdict


@pytest.mark.parametrize("text,expect", [
    ("[[A]]", "A"), ("After careful thought: [[B]].", "B"), ("[[ A ]]", "A"), ("B", "B"), ("Response A", "A"),
    ("Output (b) is better", "B"), ("B.", "B"),
    ("A little girl went home.", None), ("a", None), ("[[A]] no wait [[B]]", None), ("A and B are both fine", None), ("", None), (None, None),
    ("Lily went to the park.", None),
])
def test_parse_verdict(text: str | None, expect: str | None) -> None:
    assert parse_verdict(text) == expect


@pytest.mark.parametrize("text,structured,expect", [
    ('{"verdict": "B"}', True, ("B", "json")), ('{"verdict": "a"}', True, (None, "none")),
    ('{"verdict": "tie"}', True, (None, "none")), ('["A"]', True, ("A", "text")), ("[[A]]", True, ("A", "text")),
    ('{"verdict": "B"}', False, (None, "none")), ("[[B]]", False, ("B", "text")), (None, True, (None, "none")),
])
def test_read_verdict_json_first_then_the_text_parser(text: str | None, structured: bool, expect: tuple) -> None:
    assert read_verdict(text, structured) == expect


def test_combine_needs_the_same_model_chosen_in_both_orders() -> None:
    assert combine("A", "B") == "win"  # A chosen first (shown as A) and after the swap (shown as B)
    assert combine("B", "A") == "loss"
    assert combine("A", "A") == "tie"  # position bias: always the first slot
    assert combine("B", "B") == "tie"
    assert combine("A", None) is None and combine(None, None) is None  # not a tie: excluded from the score


def test_aggregate_arithmetic_on_fixed_verdicts() -> None:
    verdicts = [("hin_Deva", "A", "B"), ("hin_Deva", "A", "B"), ("hin_Deva", "A", "A"), ("hin_Deva", "B", "A"),
                ("fra_Latn", "B", "A"), ("fra_Latn", None, "B")]
    table = aggregate([{"lang": lang, "verdict_ab": a, "verdict_ba": b, "excluded": exclusion(a, b, [None, None])}
                       for lang, a, b in verdicts])
    assert table["hin_Deva"]["score"] == (1 + 1 + 0.5 + 0) / 4 and table["hin_Deva"]["score_pct"] == 62.5
    assert {k: table["hin_Deva"][k] for k in ("win", "tie", "loss", "n", "unparsed", "same_position", "same_first")} \
        == {"win": 2, "tie": 1, "loss": 1, "n": 4, "unparsed": 0, "same_position": 1, "same_first": 1}
    assert table["fra_Latn"]["score"] == 0.0 and table["fra_Latn"]["n"] == 1  # the unreadable pair is not a tie
    assert table["fra_Latn"]["unparsed"] == 1 and table["fra_Latn"]["excluded_rate"] == 0.5
    assert table["all"]["score"] == pytest.approx((2 + 0.5) / 5) and table["all"]["n"] == 5
    assert list(table)[-1] == "all"


def test_judge_prompts_swap_the_order() -> None:
    ab, ba = judge_prompts("judge_pairwise", "Say hi.", "RESPONSE-ONE", "RESPONSE-TWO", "English")
    assert ab.index("RESPONSE-ONE") < ab.index("RESPONSE-TWO")
    assert ba.index("RESPONSE-TWO") < ba.index("RESPONSE-ONE")
    assert ab.replace("RESPONSE-ONE", "X").replace("RESPONSE-TWO", "RESPONSE-ONE").replace("X", "RESPONSE-TWO") == ba


def test_mlift_judge_end_to_end(tmp_path: Path, stories260k: Path) -> None:
    """A real judge LLM (the 260K Llama through mlift's transformers backend) over two answer files: the plumbing
    (both orders sent, verdicts parsed, outcomes aggregated, files written)."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    prompts = [("1", "hin_Deva", "नमस्ते कहो।"), ("2", "fra_Latn", "Dis bonjour."), ("3", "fra_Latn", "Compte à trois.")]
    a.write_text("".join(json.dumps({"id": i, "lang": lang, "instruction": p, "response": f"answer a {i}"}) + "\n"
                         for i, lang, p in prompts))
    b.write_text("".join(json.dumps({"id": i, "lang": lang, "instruction": p, "output": f"answer b {i}"}) + "\n"
                         for i, lang, p in prompts))
    recipe = tmp_path / "judge.yaml"
    recipe.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"), "model_a": {"path": str(a), "name": "A"}, "model_b": {"path": str(b)},
        "chat": False, "max_excluded_rate": 1.0,  # a 260K story model rarely answers in format: plumbing only
        "judge": {"backend": "transformers", "model": str(stories260k), "device": "cpu", "batch_size": 6,
                  "params": {"max_new_tokens": 6}}}))
    assert cli_main(["judge", str(recipe), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "judgments.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert all(r["judge_ab"] is not None and r["judge_ba"] is not None and r["error"] is None for r in rows)
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["scores"]
    expect = aggregate([{"lang": r["lang"], "verdict_ab": parse_verdict(r["judge_ab"]),
                         "verdict_ba": parse_verdict(r["judge_ba"]),
                         "excluded": None if parse_verdict(r["judge_ab"]) and parse_verdict(r["judge_ba"]) else "unparsed",
                         # a local model has no structured output: the text parser reads every verdict
                         **{k: "text" if parse_verdict(r[f"judge_{o}"]) else "none"
                            for o in ("ab", "ba") for k in [f"path_{o}"]}}
                        for r in rows])
    assert scores == expect
    assert scores["fra_Latn"]["pairs"] == 2 and scores["all"]["pairs"] == 3
