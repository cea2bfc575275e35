"""The pairwise judge: verdict parsing, the both-orders rule, the arithmetic, and `mlift judge` end to end against a
local rule judge (a stand-in for a hosted judge API) whose scores are known by hand."""

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


# The judge's rule (a stand-in for a hosted judge API, which cannot run here): it prefers the response marked GOOD, except
# for an instruction that asks it to always pick one position, as a position-biased judge does.
GOOD, BAD = "[GOOD] well answered", "[BAD] off topic"
FIRST, SECOND = "(the judge always picks the first)", "(the judge always picks the second)"
# (id, lang, instruction, model A's response, model B's response)
PAIRS = [("f1", "fra_Latn", "Dis bonjour.", GOOD, BAD), ("f2", "fra_Latn", "Compte à trois.", GOOD, BAD),
         ("f3", "fra_Latn", "Nomme une couleur.", GOOD, BAD), ("f4", "fra_Latn", "Donne un fruit.", GOOD, BAD),
         ("f5", "fra_Latn", "Cite un fleuve.", BAD, GOOD), ("f6", "fra_Latn", f"Dis merci. {FIRST}", GOOD, BAD),
         ("h1", "hin_Deva", "नमस्ते कहो।", GOOD, BAD), ("h2", "hin_Deva", "तीन तक गिनो।", BAD, GOOD),
         ("h3", "hin_Deva", "एक रंग बताओ।", BAD, GOOD), ("h4", "hin_Deva", f"धन्यवाद कहो। {SECOND}", BAD, GOOD)]


def rule_verdict(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    first, second = prompt.split("[Response A]", 1)[1].split("[Response B]", 1)
    verdict = "A" if FIRST in prompt else "B" if SECOND in prompt else "A" if GOOD in first else "B"
    assert (GOOD in first) != (GOOD in second), prompt  # each prompt shows one GOOD and one BAD response
    if body.get("response_format", {}).get("type") == "json_schema":  # a structured-output server
        return json.dumps({"verdict": verdict})
    return f"[[{verdict}]]"


@pytest.mark.parametrize("structured", [True, False])
def test_mlift_judge_end_to_end(tmp_path: Path, structured: bool) -> None:
    """`mlift judge RECIPE` through the openai backend against a local server that stands in for a hosted judge API and
    decides by a known rule (rule_verdict), so the scores are known by hand:
    fra_Latn: 4 wins (A good in both orders), 1 loss, 1 tie (always the first position)  -> (4 + 0.5) / 6 = 75 %;
    hin_Deva: 1 win, 2 losses, 1 tie (always the second position)                           -> (1 + 0.5) / 4 = 37.5 %;
    all: (4.5 + 1.5) / 10 = 60 %. Swapped orders give 25 / 62.5 / 40, ties scored 0 or 1 move fra and hin, and one
    order only (both prompts alike) makes every pair a tie (50)."""
    from servers import LatencyServer

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"id": i, "lang": lang, "instruction": p, "response": ra}) + "\n"
                         for i, lang, p, ra, _ in PAIRS))
    b.write_text("".join(json.dumps({"id": i, "lang": lang, "instruction": p, "output": rb}) + "\n"
                         for i, lang, p, _, rb in PAIRS))
    server = LatencyServer(answer=rule_verdict)
    try:
        recipe = tmp_path / "judge.yaml"
        recipe.write_text(yaml.safe_dump({
            "output_dir": str(tmp_path / "out"), "model_a": {"path": str(a), "name": "A"}, "model_b": {"path": str(b)},
            "structured": structured,
            "judge": {"backend": "openai", "model": "rule-judge", "base_url": f"{server.url}/v1", "max_retries": 0,
                      "concurrency": 4}}))
        assert cli_main(["judge", str(recipe), "--no-progress"]) == 0
        bodies = list(server.bodies)
    finally:
        server.stop()
    # both orders of every pair were asked: A's response first, then B's first
    shown = sorted((b["messages"][-1]["content"].split("[Instruction]\n", 1)[1].split("\n", 1)[0],
                    b["messages"][-1]["content"].split("[Response A]\n", 1)[1].split("\n", 1)[0]) for b in bodies)
    assert shown == sorted((p, r) for _, _, p, ra, rb in PAIRS for r in (ra, rb))
    assert all(("response_format" in b) == structured for b in bodies)
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["scores"]
    assert [scores[k]["score_pct"] for k in ("fra_Latn", "hin_Deva", "all")] == [75.0, 37.5, 60.0]
    counts = {k: tuple(scores[k][c] for c in ("win", "tie", "loss", "n", "same_first", "same_second", "unparsed"))
              for k in ("fra_Latn", "hin_Deva")}
    assert counts == {"fra_Latn": (4, 1, 1, 6, 1, 0, 0), "hin_Deva": (1, 1, 2, 4, 0, 1, 0)}
    path = "json" if structured else "text"
    assert scores["all"]["verdict_paths"] == {"json": 0, "text": 0, "none": 0, path: 20}
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "judgments.jsonl").read_text().splitlines())}
    assert {i: (r["verdict_ab"], r["verdict_ba"], r["outcome"]) for i, r in rows.items()} == {
        "f1": ("A", "B", "win"), "f2": ("A", "B", "win"), "f3": ("A", "B", "win"), "f4": ("A", "B", "win"),
        "f5": ("B", "A", "loss"), "f6": ("A", "A", "tie"), "h1": ("A", "B", "win"), "h2": ("B", "A", "loss"),
        "h3": ("B", "A", "loss"), "h4": ("B", "B", "tie")}
