"""Pairwise LLM judge (the Pinch protocol): the judge sees both answers in both orders; model A wins only if chosen
both times, loses only if model B is chosen both times; the same position chosen in both orders is a tie (and counted
as position bias). Score = mean of win 1 / tie 0.5 / loss 0, per language and overall; `score_pct` is the same in %
(the paper's figures: 50 = parity with the reference). A pair whose verdict could not be read, or whose request failed,
is not a tie: it is excluded from the score and counted per language (a judge that answers off-format would otherwise
pull every score toward 50, the very line the paper reads); above `max_excluded_rate` the judge job fails.
Where the judge's backend has structured output (`structured`), the request asks for {"verdict": "A"|"B"} by JSON
schema and the text parser is the fallback; scores.json counts per language which path each verdict took.

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
from mlift.llm.base import json_field
from mlift.recipe import RecipeError, Schema

Verdict = Literal["A", "B"]
PairResult = Literal["win", "tie", "loss"]  # for model A, from both orders
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
    structured: bool = Field(True, description="ask the judge for {\"verdict\": \"A\"|\"B\"} through the backend's "
                             "structured output where it has one (vLLM guided decoding, openai chat response_format); "
                             "the text parser reads any other answer")
    langs: list[LangCode] | None = None
    limit: int | None = Field(None, ge=1, description="only the first N shared prompts")
    max_excluded_rate: float = Field(0.05, ge=0, le=1, description="a language with a larger share of pairs excluded "
                                     "(verdict unreadable, or the request failed for good) fails the job")

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


VERDICT_SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["A", "B"]}},
                  "required": ["verdict"], "additionalProperties": False}
VERDICT_PATHS = ("json", "text", "none")


def json_verdict(text: str | None) -> Verdict | None:
    """The verdict of a structured answer {"verdict": "A"|"B"}, or None."""
    verdict = json_field(text, "verdict")
    return verdict if verdict in ("A", "B") else None


def read_verdict(text: str | None, structured: bool) -> tuple[Verdict | None, str]:
    """(verdict, path): JSON first when the request asked for it, else (or when it is not valid JSON) the text
    parser; path is "json", "text" or "none" (no readable verdict)."""
    verdict = json_verdict(text) if structured else None
    if verdict is not None:
        return verdict, "json"
    verdict = parse_verdict(text)
    return verdict, "text" if verdict is not None else "none"


def combine(verdict_ab: Verdict | None, verdict_ba: Verdict | None) -> PairResult | None:
    """The result for model A. verdict_ab: A shown first (A wins by 'A'); verdict_ba: order swapped (A wins by 'B').
    None when a verdict is missing: the pair is excluded from the score, never a tie."""
    if verdict_ab is None or verdict_ba is None:
        return None
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


def exclusion(verdict_ab: Verdict | None, verdict_ba: Verdict | None, errors: list[str | None]) -> str | None:
    """Why a pair is not scored: "failed" (a request failed for good), "pending" (a transient failure: a rerun asks
    again), "unparsed" (the judge answered, off-format); None when both verdicts were read."""
    from mlift.llm.base import is_transient

    if any(e and not is_transient(e) for e in errors):
        return "failed"
    if any(errors):
        return "pending"
    return "unparsed" if verdict_ab is None or verdict_ba is None else None


EXCLUDED = ("unparsed", "failed", "pending")


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Judgment rows ({lang, verdict_ab, verdict_ba, excluded, path_ab, path_ba}) -> per language, plus an 'all' row: score over the
    scored pairs (None if none), win/tie/loss, n (scored), the excluded pairs by reason and their share of all pairs
    (`excluded_rate`, unparsed + failed), and position bias: `same_position` pairs where the judge chose the same
    slot in both orders (first / second), and its share of the scored pairs; `verdict_paths`: how each verdict of
    the rows (two per pair) was read, json / text / none."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["lang"]].append(row)
        groups["all"].append(row)
    table = {}
    for lang in sorted(groups, key=lambda k: (k == "all", k)):
        items = groups[lang]
        scored = [r for r in items if not r.get("excluded")]
        outcomes = [combine(r["verdict_ab"], r["verdict_ba"]) for r in scored]
        counts = {k: sum(1 for o in outcomes if o == k) for k in POINTS}
        score = sum(POINTS[o] for o in outcomes if o) / len(outcomes) if outcomes else None
        excluded = {k: sum(1 for r in items if r.get("excluded") == k) for k in EXCLUDED}
        paths = [r.get(k) for r in items for k in ("path_ab", "path_ba")]
        first = sum(1 for r in scored if r["verdict_ab"] == r["verdict_ba"] == "A")
        second = sum(1 for r in scored if r["verdict_ab"] == r["verdict_ba"] == "B")
        table[lang] = {"score": score, "score_pct": None if score is None else round(100 * score, 2), **counts,
                       "n": len(outcomes), **excluded, "pairs": len(items),
                       "excluded_rate": (excluded["unparsed"] + excluded["failed"]) / len(items),
                       "same_position": first + second, "same_first": first, "same_second": second,
                       "same_position_rate": (first + second) / len(outcomes) if outcomes else None,
                       "verdict_paths": {k: paths.count(k) for k in VERDICT_PATHS}}
    return table


def summary_line(lang: str, s: dict[str, Any]) -> str:
    """One console line per language: the score and what it leaves out."""
    score = "  n/a " if s["score_pct"] is None else f"{s['score_pct']:6.2f}"
    same = "-" if s["same_position_rate"] is None else f"{100 * s['same_position_rate']:.0f}%"
    pending = f", pending {s['pending']}" if s["pending"] else ""
    return (f"{lang:<10} score={score}  win={s['win']} tie={s['tie']} loss={s['loss']}  n={s['n']}  "
            f"excluded={s['unparsed'] + s['failed']}/{s['pairs']} ({100 * s['excluded_rate']:.1f}%: unparsed "
            f"{s['unparsed']}, failed {s['failed']}{pending})  same position in both orders {s['same_position']} "
            f"({same}; first {s['same_first']}, second {s['same_second']})  verdicts read as json/text/none "
            f"{'/'.join(str(s['verdict_paths'][k]) for k in VERDICT_PATHS)}")


def over_threshold(table: dict[str, dict[str, Any]], limit: float) -> list[str]:
    """A message per language whose share of excluded pairs is above the recipe's limit."""
    return [f"{lang}: {s['unparsed'] + s['failed']} of {s['pairs']} pairs ({100 * s['excluded_rate']:.1f}%) have no "
            f"readable verdict (unparsed {s['unparsed']}, failed {s['failed']}), above max_excluded_rate "
            f"{100 * limit:g}%" for lang, s in table.items() if lang != "all" and s["excluded_rate"] > limit]
