"""Stage 4a: quality score of each (instruction_en, fragment_en) pair; the diversity selection is mlift.generate.select.

quality = w_judge * (rating - 1) / 4 + w_length * length_score + w_copy * (1 - copy) + w_lang * P(L | native)
(weights normalized to sum 1). P(L | native) comes from the recipe's own lang-ID choice for L (fragments.langid, with its
per_language overrides): the detector's probability, the script fraction for `script`, 1 for `none` or lang-ID off.
Every component is graded, so the heuristics also rank the pairs that pass their filters:
length_score = 1 / (1 + |ln(ratio / length_target)|) is 1 at the recipe's target instruction/response length ratio.
rating: the judge's 1-5 answer, read from what the prompt asks for ("Rating: N"), else "N/5" / "N out of 5", else a
rating verb ("I'd rate it 4"), else a bare leading digit; never the "1 to 5" of a restated scale. An unparsable answer
uses `rating_fallback` (marked in meta) or, with no fallback, quarantines the pair (judge_unparsable).
Where the judge's backend has structured output (`score.structured`), the request asks for {"rating": N} by JSON schema
and the parser above is the fallback; meta.scores.rating_path and the stage's usage count which path each rating took
(json / text / fallback). Hard filters drop with their reason:
low_rating, length_ratio, copies_response, native_lang, low_quality. All scores go to meta.scores.
With k instruction candidates, the best-scoring one becomes `instruction_en`.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter

from mlift.data.text import word_ngrams
from mlift.generate.config import LangIDConfig, ScoreConfig
from mlift.generate.fragments import langid_check
from mlift.generate.llmutil import make_request
from mlift.langid import LanguageCheck, script_fraction
from mlift.llm import CachedLLM, GenParams
from mlift.llm.base import json_field
from mlift.records import Record
from mlift.runner.stage import Outcome

_LABELLED = re.compile(r"(?i)\brating\W{0,3}\s*(?:is\s*|of\s*)?\**\s*([1-5])(?![\d.,]\d|\s*(?:-|to)\s*\d)")
_OUT_OF = re.compile(r"(?i)(?<![\d.])([1-5])\s*(?:/|out of)\s*5\b")
_VERB = re.compile(r"(?i)\b(?:rate|give|score|grade)\b[^\d\n.]{0,30}?(?<![\d.])([1-5])(?![\d.,]\d|\s*(?:-|to)\s*\d)")
_LEADING = re.compile(r"^\W{0,3}([1-5])(?![\d]|[.,]\d)")  # completion mode: the text right after "Rating:"


def parse_rating(text: str | None) -> int | None:
    """The judge's 1-5 rating, or None. The last match of the strongest form wins (judges restate at the end)."""
    text = text or ""
    for pattern in (_LABELLED, _OUT_OF, _VERB):
        found = pattern.findall(text)
        if found:
            return int(found[-1])
    m = _LEADING.match(text)
    return int(m.group(1)) if m else None


RATING_SCHEMA = {"type": "object", "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5}},
                 "required": ["rating"], "additionalProperties": False}


def json_rating(text: str | None) -> int | None:
    """The rating of a structured answer {"rating": N}, or None."""
    rating = json_field(text, "rating")
    return rating if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5 else None


def length_score(ratio: float, target: float) -> float:
    """1 at the target instruction/response length ratio, falling with the log distance (1/2 at a factor e off)."""
    return 1.0 / (1.0 + abs(math.log(max(ratio, 1e-6) / target)))


def native_score(check: LanguageCheck | None, text: str) -> float:
    """P(text is in the check's language) as the recipe measures it (see the module docstring)."""
    if check is None or check.method == "none":
        return 1.0
    if check.method == "script":
        return script_fraction(text, check.lang.script)
    return check.score(text)[0]


def copy_fraction(instruction: str, response: str) -> float:
    grams = word_ngrams(instruction, 3)
    if not grams:
        return 0.0
    return len(grams & word_ngrams(response, 3)) / len(grams)


class ScoreStage:
    name = "score"
    one_to_one = True

    def __init__(self, judge: CachedLLM, cfg: ScoreConfig, seed: int, langid: LangIDConfig | None = None,
                 batch_size: int = 16):
        self.judge = judge
        self.cfg = cfg
        self.seed = seed
        self.mode = judge.prompt_mode(cfg.mode)
        self.langid = langid or LangIDConfig()
        self.checks: dict[str, LanguageCheck | None] = {}
        self.batch_size = batch_size
        self._lock = threading.Lock()  # process() runs on several threads at once (the runner's window)
        self.structured = cfg.structured and judge.structured(self.mode)
        self.paths: Counter = Counter()  # rating_json / rating_text / rating_fallback

    def check(self, lang: str) -> LanguageCheck | None:
        with self._lock:
            if lang not in self.checks:
                self.checks[lang] = langid_check(self.langid, lang)
            return self.checks[lang]

    def usage(self) -> dict:
        usage = self.judge.usage()
        with self._lock:
            if self.paths:
                usage.setdefault(self.judge.name, {}).update(self.paths)
        return usage

    @property
    def workers(self) -> int:
        return self.judge.parallel_batches(self.batch_size)

    def process(self, batch: list[Record]) -> list[Outcome]:
        c = self.cfg
        if self.structured:  # room for {"rating": N} whatever max_new_tokens a text answer needs
            params = GenParams(max_new_tokens=max(c.max_new_tokens, 16), temperature=0.0, seed=self.seed,
                               json_schema=RATING_SCHEMA)
        else:
            params = GenParams(max_new_tokens=c.max_new_tokens, temperature=0.0, seed=self.seed,
                               stop=["\n"] if self.mode == "completion" else [])
        pairs = [(i, cand) for i, rec in enumerate(batch) for cand in rec.get("instruction_candidates") or [rec["instruction_en"]]]
        reqs = [make_request(self.mode, c.prompt, "score", instruction=cand, response=batch[i]["fragment_en"])
                for i, cand in pairs]
        comps = self.judge.generate(reqs, params)
        judged: dict[int, list] = {i: [] for i in range(len(batch))}
        for (i, cand), comp in zip(pairs, comps):
            judged[i].append((cand, comp))
        weights = quality_weights(c)
        wsum = sum(weights.values()) or 1.0
        out = []
        for i, rec in enumerate(batch):
            p_lang = native_score(self.check(rec.lang), rec["fragment"])
            best = None
            errors = []
            for cand, comp in judged[i]:
                if not comp.ok:
                    errors.append(comp.error or "no completion")
                    continue
                rating = json_rating(comp.text) if self.structured else None
                path = "json" if rating is not None else "text"
                rating = rating if rating is not None else parse_rating(comp.text)
                fallback = rating is None
                path = "fallback" if fallback else path
                if fallback and c.rating_fallback is None:
                    errors.append(f"unparsable judge answer {comp.text[:60]!r}")
                    continue
                r = float(rating if rating is not None else c.rating_fallback)
                ratio = len(cand) / max(1, len(rec["fragment_en"]))
                copy = copy_fraction(cand, rec["fragment_en"])
                parts = {"judge": (r - 1) / 4, "length": length_score(ratio, c.length_target), "copy": 1 - copy,
                         "lang": p_lang}
                quality = sum(weights[k] * v for k, v in parts.items()) / wsum
                s = {"rating": r, "rating_fallback": fallback, "rating_path": path, "judge_answer": (comp.text or "")[:80],
                     "length_ratio": round(ratio, 4), "copy": round(copy, 4), "native_lang": round(p_lang, 4),
                     "components": {k: round(v, 4) for k, v in parts.items()}, "quality": round(quality, 4)}
                if best is None or s["quality"] > best[1]["quality"]:
                    best = (cand, s)
            if best is None:
                reason = "judge_unparsable" if errors and all(e.startswith("unparsable") for e in errors) else "llm_error"
                out.append(Outcome.quarantine(rec, reason, errors[0] if errors else "no candidate"))
                continue
            cand, s = best
            with self._lock:
                self.paths[f"rating_{s['rating_path']}"] += 1
            rec.fields["instruction_en"] = cand
            rec.meta["scores"] = s
            rec.meta["judge_model"] = self.judge.name
            why = self.reject(s)
            out.append(Outcome.drop(rec, *why) if why else Outcome.keep(rec))
        return out

    def reject(self, s: dict) -> tuple[str, str] | None:
        c = self.cfg
        if s["rating"] < c.min_rating:
            return "low_rating", f"{s['rating']} < {c.min_rating}"
        if not c.length_ratio[0] <= s["length_ratio"] <= c.length_ratio[1]:
            return "length_ratio", f"{s['length_ratio']} outside {list(c.length_ratio)}"
        if s["copy"] > c.max_copy:
            return "copies_response", f"{s['copy']} > {c.max_copy}"
        if s["native_lang"] < c.min_native_lang:
            return "native_lang", f"{s['native_lang']} < {c.min_native_lang}"
        if s["quality"] < c.min_quality:
            return "low_quality", f"{s['quality']} < {c.min_quality}"
        return None


def quality_weights(c: ScoreConfig) -> dict[str, float]:
    return {"judge": c.w_judge, "length": c.w_length, "copy": c.w_copy, "lang": c.w_lang}


def _ranks(x: list[float]) -> list[float]:
    """Average ranks (ties share their mean rank), for Spearman's rho."""
    order = sorted(range(len(x)), key=x.__getitem__)
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return round(cov / var, 4) if var else None


def weight_effects(scores: list[dict], cfg: ScoreConfig, top: int | None = None) -> dict[str, dict]:
    """Per quality component over the scored pairs: its weight, Spearman's rho with the final quality, and the share of
    the top-`top` pairs by quality (default: the better half) that leave when that weight is set to 0."""
    scores = [s for s in scores if "components" in s]
    if not scores:
        return {}
    weights = quality_weights(cfg)
    top = min(top or max(1, len(scores) // 2), len(scores))
    quality = [s["quality"] for s in scores]

    def top_set(w: dict[str, float]) -> set[int]:
        total = sum(w.values()) or 1.0
        q = [sum(w[k] * s["components"][k] for k in w) / total for s in scores]
        return set(sorted(range(len(q)), key=lambda i: (-q[i], i))[:top])

    base = top_set(weights)
    out = {}
    for k, w in weights.items():
        changed = len(base - top_set({**weights, k: 0.0})) / top
        out[k] = {"weight": w, "spearman_with_quality": spearman([s["components"][k] for s in scores], quality),
                  "top_changed_when_zeroed": round(changed, 4)}
    return out
