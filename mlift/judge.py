"""Pairwise LLM judge (the Pinch protocol): the judge sees both answers in both orders; model A wins only if chosen
both times, loses only if model B is chosen both times, anything else (including an unreadable verdict) is a tie.
Score = mean of win 1 / tie 0.5 / loss 0, per language and overall; `score_pct` is the same in % (the paper's
figures: 50 = parity with the reference).

Model B is one answer file, or, as Pinch ran it, a reference per language (`reference_by_lang`): the prompts in
language L are compared with the answers of the model tuned only on L."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from mlift.fingerprint import InputPath, PromptRef
from mlift.languages import LangCode
from mlift.llm import LLMConfig
from mlift.recipe import RecipeError, Schema

Verdict = Literal["A", "B"]
Outcome = Literal["win", "tie", "loss"]
POINTS: dict[str, float] = {"win": 1.0, "tie": 0.5, "loss": 0.0}

_BRACKET = re.compile(r"\[\[\s*([AB])\s*\]\]")
# Without brackets, accept only an answer that is just the letter, or names the response ("Response B",
# "Output (a)"): a bare "A" inside prose is usually the English article.
_ALONE = re.compile(r"^\W*([AB])\W*$")
_NAMED = re.compile(r"\b(?:response|output|assistant)\s*\(?([AB])\)?(?![\w])", re.IGNORECASE)


class AnswersFile(Schema):
    path: InputPath = Field(description="JSONL with id, lang, instruction (or prompt) and response (or output)")
    name: str | None = Field(None, description="shown in reports; default: the file name")


class JudgeRecipe(Schema):
    seed: int = 0
    output_dir: str
    model_a: AnswersFile
    model_b: AnswersFile | None = Field(None, description="one model B for every language")
    reference_by_lang: dict[str, AnswersFile] | None = Field(
        None, description="instead of model_b: per language, the reference model's answers (Pinch: the model tuned "
                          "only on that language); a language without one is not judged")
    judge: LLMConfig
    prompt: PromptRef = Field("judge_pairwise", description="packaged Jinja prompt name or a path to a .jinja file")
    chat: bool = Field(True, description="send the prompt as a user message (False: as a raw completion prompt)")
    langs: list[LangCode] | None = None
    limit: int | None = Field(None, ge=1, description="only the first N shared prompts")

    @model_validator(mode="after")
    def _one_b(self) -> JudgeRecipe:
        if (self.model_b is None) == (self.reference_by_lang is None):
            raise ValueError("give exactly one of model_b or reference_by_lang")
        return self


@dataclass
class Pair:
    id: str
    lang: str        # FLORES code
    instruction: str
    response_a: str
    response_b: str
    model_b: str     # the name of the model A is compared with


def answers_name(f: AnswersFile) -> str:
    return f.name or Path(f.path).stem


def read_answers(path: str) -> dict[tuple[str, str], dict]:
    """(FLORES lang, id) -> row: ids repeat across languages (one instruction set, translated)."""
    from mlift.languages import UnknownLanguageError, get_language
    from mlift.records import BadLine, read_jsonl

    if not Path(path).is_file():
        raise RecipeError(f"answers file not found: {path}")
    out = {}
    for line, row in read_jsonl(path):
        if isinstance(row, BadLine) or not isinstance(row, dict):
            raise RecipeError(f"{path}:{line}: not a JSON object")
        for names in (("id",), ("lang",), ("instruction", "prompt"), ("response", "output")):
            if not any(n in row and row[n] is not None for n in names):
                raise RecipeError(f"{path}:{line}: no {' or '.join(repr(n) for n in names)} field "
                                  f"(an answers file has id, lang, instruction/prompt, response/output)")
        try:
            lang = get_language(str(row["lang"])).flores
        except UnknownLanguageError as exc:
            raise RecipeError(f"{path}:{line}: lang: {exc}") from None
        out[(lang, str(row["id"]))] = row
    return out


def _text(path: str, row: dict, *keys: str) -> str:
    for k in keys:
        if k in row:
            return str(row[k])
    raise RecipeError(f"{path}: id {row['id']}: no {' or '.join(keys)} field")


def build_pairs(cfg: JudgeRecipe) -> list[Pair]:
    """The prompts both sides answered (matched by language and id), after langs/limit."""
    from mlift.languages import get_language

    a = read_answers(cfg.model_a.path)
    if cfg.reference_by_lang is not None:
        refs = {get_language(k).flores: v for k, v in cfg.reference_by_lang.items()}
    else:
        refs = {lang: cfg.model_b for lang, _ in a}  # type: ignore[misc]
    wanted = {get_language(x).flores for x in cfg.langs} if cfg.langs else None
    loaded: dict[str, dict[tuple[str, str], dict]] = {}
    pairs = []
    for (lang, i), row in a.items():
        ref = refs.get(lang)
        if ref is None or (wanted is not None and lang not in wanted):
            continue
        b = loaded.setdefault(ref.path, read_answers(ref.path))
        if (lang, i) not in b:
            continue
        pairs.append(Pair(i, lang, _text(cfg.model_a.path, row, "instruction", "prompt"),
                          _text(cfg.model_a.path, row, "response", "output"),
                          _text(ref.path, b[(lang, i)], "response", "output"), answers_name(ref)))
    pairs = pairs[: cfg.limit] if cfg.limit else pairs
    if not pairs:
        raise RecipeError(f"no prompt is answered by both {cfg.model_a.path} and its reference (after langs/limit)")
    return pairs


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
        score = sum(POINTS[o] for o in items) / len(items)
        table[lang] = {"score": score, "score_pct": round(100 * score, 2), **counts, "n": len(items)}
    return table
