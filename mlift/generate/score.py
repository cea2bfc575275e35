"""Stage 4a: quality score of each (instruction_en, fragment_en) pair; the diversity selection is mlift.generate.select.

quality = w_judge * (rating - 1) / 4 + w_length * [length ratio in range] + w_copy * (1 - copy) + w_lang * P(L | native)
(weights normalized to sum 1). rating: an LLM judge's 1-5 answer; an unparsable answer uses `rating_fallback` (marked
in meta) or, with no fallback, quarantines the pair (judge_unparsable). Hard filters drop with their reason:
low_rating, length_ratio, copies_response, native_lang, low_quality. All scores go to meta.scores.
With k instruction candidates, the best-scoring one becomes `instruction_en`.
"""

from __future__ import annotations

import re

from mlift.generate.config import ScoreConfig
from mlift.generate.llmutil import make_request
from mlift.generate.text import lang_score, word_ngrams
from mlift.languages import get_language
from mlift.llm import CachedLLM, GenParams
from mlift.records import Record
from mlift.runner import Outcome

_RATING = re.compile(r"(?<![\d.])([1-5])(?!\d|\.\d)")  # "4", "4/5", "1. The..." but not "4.5" or "15"


def parse_rating(text: str | None) -> int | None:
    m = _RATING.search(text or "")
    return int(m.group(1)) if m else None


def copy_fraction(instruction: str, response: str) -> float:
    grams = word_ngrams(instruction, 3)
    if not grams:
        return 0.0
    return len(grams & word_ngrams(response, 3)) / len(grams)


class ScoreStage:
    name = "score"
    one_to_one = True

    def __init__(self, judge: CachedLLM, cfg: ScoreConfig, seed: int, langid_model: str = "lite", batch_size: int = 16):
        self.judge = judge
        self.cfg = cfg
        self.seed = seed
        self.mode = judge.prompt_mode(cfg.mode)
        self.langid_model = langid_model
        self.batch_size = batch_size

    def usage(self) -> dict:
        return self.judge.usage()

    def process(self, batch: list[Record]) -> list[Outcome]:
        c = self.cfg
        params = GenParams(max_new_tokens=c.max_new_tokens, temperature=0.0, seed=self.seed,
                           stop=["\n"] if self.mode == "completion" else [])
        pairs = [(i, cand) for i, rec in enumerate(batch) for cand in rec.get("instruction_candidates") or [rec["instruction_en"]]]
        reqs = [make_request(self.mode, c.prompt, "score", instruction=cand, response=batch[i]["fragment_en"])
                for i, cand in pairs]
        comps = self.judge.generate(reqs, params)
        judged: dict[int, list] = {i: [] for i in range(len(batch))}
        for (i, cand), comp in zip(pairs, comps):
            judged[i].append((cand, comp))
        wsum = c.w_judge + c.w_length + c.w_copy + c.w_lang or 1.0
        out = []
        for i, rec in enumerate(batch):
            lang = get_language(rec.lang)
            p_lang, _ = lang_score(rec["fragment"], {x for x in (lang.iso1, lang.iso3) if x}, self.langid_model)
            best = None
            errors = []
            for cand, comp in judged[i]:
                if not comp.ok:
                    errors.append(comp.error or "no completion")
                    continue
                rating = parse_rating(comp.text)
                fallback = rating is None
                if fallback and c.rating_fallback is None:
                    errors.append(f"unparsable judge answer {comp.text[:60]!r}")
                    continue
                r = float(rating if rating is not None else c.rating_fallback)
                ratio = len(cand) / max(1, len(rec["fragment_en"]))
                length_ok = float(c.length_ratio[0] <= ratio <= c.length_ratio[1])
                copy = copy_fraction(cand, rec["fragment_en"])
                quality = (c.w_judge * (r - 1) / 4 + c.w_length * length_ok + c.w_copy * (1 - copy) + c.w_lang * p_lang) / wsum
                s = {"rating": r, "rating_fallback": fallback, "judge_answer": (comp.text or "")[:80],
                     "length_ratio": round(ratio, 4), "copy": round(copy, 4), "native_lang": round(p_lang, 4),
                     "quality": round(quality, 4)}
                if best is None or s["quality"] > best[1]["quality"]:
                    best = (cand, s)
            if best is None:
                reason = "judge_unparsable" if errors and all(e.startswith("unparsable") for e in errors) else "llm_error"
                out.append(Outcome.quarantine(rec, reason, errors[0] if errors else "no candidate"))
                continue
            cand, s = best
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
