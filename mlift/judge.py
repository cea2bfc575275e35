"""Pairwise LLM judge (the Pinch protocol): the judge sees both answers in both orders; model A wins only if chosen
both times, loses only if model B is chosen both times, anything else (including an unreadable verdict) is a tie.
Score = mean of win 1 / tie 0.5 / loss 0, per language and overall."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal

from pydantic import Field

from mlift.languages import LangCode
from mlift.llm import LLMConfig
from mlift.recipe import Schema

Verdict = Literal["A", "B"]
Outcome = Literal["win", "tie", "loss"]
POINTS: dict[str, float] = {"win": 1.0, "tie": 0.5, "loss": 0.0}

_BRACKET = re.compile(r"\[\[\s*([AB])\s*\]\]")
# Without brackets, accept only an answer that is just the letter, or names the response ("Response B",
# "Output (a)"): a bare "A" inside prose is usually the English article.
_ALONE = re.compile(r"^\W*([AB])\W*$")
_NAMED = re.compile(r"\b(?:response|output|assistant)\s*\(?([AB])\)?(?![\w])", re.IGNORECASE)


class AnswersFile(Schema):
    path: str = Field(description="JSONL with id, lang, instruction (or prompt) and response (or output)")
    name: str | None = Field(None, description="shown in reports; default: the file name")


class JudgeRecipe(Schema):
    seed: int = 0
    output_dir: str
    model_a: AnswersFile
    model_b: AnswersFile
    judge: LLMConfig
    prompt: str = Field("judge_pairwise", description="packaged Jinja prompt name or a path to a .jinja file")
    chat: bool = Field(True, description="send the prompt as a user message (False: as a raw completion prompt)")
    langs: list[LangCode] | None = None
    limit: int | None = Field(None, ge=1, description="only the first N shared prompts")


def parse_verdict(text: str | None) -> Verdict | None:
    """'[[A]]' / '[[B]]' (the template's format) first; else a lone A or B; None when absent or ambiguous."""
    if not text:
        return None
    found = set(_BRACKET.findall(text))
    if len(found) == 1:
        return found.pop()  # type: ignore[return-value]
    if found:
        return None
    first = text.strip().split("\n")[0]
    alone = _ALONE.match(first)
    if alone:
        return alone.group(1)  # type: ignore[return-value]
    named = {m.upper() for m in _NAMED.findall(first)}
    return named.pop() if len(named) == 1 else None  # type: ignore[return-value]


def combine(verdict_ab: Verdict | None, verdict_ba: Verdict | None) -> Outcome:
    """Outcome for model A. verdict_ab: A shown first (A wins by 'A'); verdict_ba: order swapped (A wins by 'B')."""
    if verdict_ab == "A" and verdict_ba == "B":
        return "win"
    if verdict_ab == "B" and verdict_ba == "A":
        return "loss"
    return "tie"


def judge_prompts(template: str, instruction: str, response_a: str, response_b: str,
                  language: str | None = None) -> tuple[str, str]:
    """The two judge prompts for one pair: model A's response shown first, then the same with the order swapped."""
    from mlift.prompts import render

    first = render(template, instruction=instruction, response_a=response_a, response_b=response_b, language=language)
    second = render(template, instruction=instruction, response_a=response_b, response_b=response_a, language=language)
    return first, second


def aggregate(outcomes: list[tuple[str, Outcome]]) -> dict[str, dict[str, Any]]:
    """[(lang, outcome)] -> {lang: {score, win, tie, loss, n}} plus an 'all' row."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for lang, outcome in outcomes:
        groups[lang].append(outcome)
        groups["all"].append(outcome)
    table = {}
    for lang in sorted(groups, key=lambda k: (k == "all", k)):
        items = groups[lang]
        counts = {k: sum(1 for o in items if o == k) for k in POINTS}
        table[lang] = {"score": sum(POINTS[o] for o in items) / len(items), **counts, "n": len(items)}
    return table
