"""Mixtures of instruction datasets: Pinch (P% of an English set replaced by multilingual examples spread evenly over
languages), monolingual sets, k-language sets under a fixed budget, weighted mixtures of mlift or HF datasets.

Pinch counting rule (exact, deterministic, recorded in the manifest):
  M = floor(N * P / 100)              multilingual budget (exact rational arithmetic; or M = `count` when given)
  q = M // L,  r = M % L              L = the chosen languages; English may be one of them (its share stays English)
  remainder "drop" (default): every language gets exactly q; the r left over stay English.
  remainder "spread": r non-English languages, in a seed-shuffled order, get q + 1.
  replaced = sum of the non-English shares; the mixture keeps N examples: N - replaced English + replaced multilingual.
  Pinch (Shaham et al. 2024): N = 4,640, P = 1, 11 languages counting English -> M = 46, q = 4, r = 2 ->
  4 examples in each of the 10 other languages = 40 replaced (4,600 English + 40 multilingual); with 11 non-English
  languages the same rule gives 44 (drop) or 46 (spread).
Fixed budgets split over languages or weighted sources use the largest-remainder rule (ties: listed order).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from mlift.data.contamination import BuildCheck
from mlift.data.conversations import DataSource, SourceRead
from mlift.languages import LangCode, get_language
from mlift.recipe import RecipeError, Schema
from mlift.records import Record

# ---- counting rules (pure functions) ----

@dataclass
class PinchPlan:
    n_english: int
    percent: str | None
    multilingual_budget: int
    per_language_base: int
    remainder: int
    remainder_rule: str
    per_language: dict[str, int] = field(default_factory=dict)  # non-English languages only
    replaced: int = 0
    english_kept: int = 0
    total: int = 0
    rule: str = ("M = floor(N*P/100) (or count); q = M // L, r = M % L over the L chosen languages (English's share "
                 "stays English); remainder drop: r unused; spread: +1 for r non-English languages in seeded order")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def pinch_plan(n_english: int, langs: list[str], percent: float | str | None = None, count: int | None = None,
               remainder: str = "drop", seed: int = 0, english: str = "eng_Latn") -> PinchPlan:
    if (percent is None) == (count is None):
        raise ValueError("give exactly one of percent or count")
    langs = list(dict.fromkeys(get_language(x).flores for x in langs))
    english = get_language(english).flores
    if not langs:
        raise ValueError("no languages")
    budget = int(Fraction(n_english) * Fraction(str(percent)) / 100) if percent is not None else int(count)
    if budget < 0 or budget > n_english:
        raise ValueError(f"multilingual budget {budget} outside 0..{n_english}")
    if remainder not in ("drop", "spread"):
        raise ValueError(f"remainder must be drop or spread, got {remainder!r}")
    q, r = divmod(budget, len(langs))
    shares = {x: q for x in langs if x != english}
    if remainder == "spread" and r:  # (r == 0: nothing to spread)
        order = sorted(shares)
        random.Random(seed).shuffle(order)
        for x in order[:r]:
            shares[x] += 1
    replaced = sum(shares.values())
    return PinchPlan(n_english, None if percent is None else str(percent), budget, q, r, remainder,
                     {x: shares[x] for x in langs if x in shares}, replaced, n_english - replaced, n_english)


def even_split(total: int, keys: list[str]) -> dict[str, int]:
    """A fixed budget over k languages: total // k each, the remainder one each to the first languages listed."""
    return apportion(total, {k: 1.0 for k in keys})


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Largest-remainder (Hamilton) apportionment: counts sum to `total` exactly; ties go to the earlier key."""
    if total < 0 or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("need total >= 0 and non-negative weights with a positive sum")
    wsum = sum(Fraction(str(w)) for w in weights.values())
    exact = {k: Fraction(total) * Fraction(str(w)) / wsum for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    left = total - sum(counts.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for k in order[:left]:
        counts[k] += 1
    return counts


# ---- sources ----

def load_source(src: DataSource, ledger: list[SourceRead] | None = None) -> list[Record]:
    """The source's records (every row needs a language: its own `lang` or the source's); its bad lines are kept in
    `ledger` for the quarantine and the manifest."""
    read = SourceRead(src)
    if ledger is not None:
        ledger.append(read)
    if any(not r.lang for r in read.records):
        raise RecipeError(f"mixture source {src.path}: rows without `lang`; set lang:")
    return read.records


# ---- mixtures ----

class PinchMix(Schema):
    kind: Literal["pinch"]
    english: DataSource
    multilingual: DataSource = Field(description="pool of examples in the other languages (e.g. translated-alpaca)")
    langs: list[LangCode] = Field(min_length=1, description="the languages the budget is spread over (may include English)")
    percent: float | None = Field(None, ge=0, le=100)
    count: int | None = Field(None, ge=0, description="instead of percent: the multilingual budget M itself")
    remainder: Literal["drop", "spread"] = "drop"
    parallel: bool = Field(True, description="replace an English example by its own translation when the pool has it")

    @model_validator(mode="after")
    def _one_budget(self) -> PinchMix:
        if (self.percent is None) == (self.count is None):
            raise ValueError("give exactly one of percent or count (the multilingual budget)")
        return self


class MonolingualMix(Schema):
    kind: Literal["monolingual"]
    source: DataSource
    lang: LangCode
    budget: int | None = Field(None, ge=1, description="None: every example of the language")


class KLangMix(Schema):
    kind: Literal["k_lang"]
    source: DataSource
    langs: list[LangCode] = Field(min_length=1)
    budget: int = Field(ge=1, description="fixed total, split evenly (largest remainder) over the languages")
    distinct_sources: bool = Field(True, description="never the same source example in two languages")


class WeightedItem(Schema):
    source: DataSource
    weight: float = Field(gt=0)


class WeightedMix(Schema):
    kind: Literal["weighted"]
    sources: list[WeightedItem] = Field(min_length=1)
    budget: int = Field(ge=1)


Mixture = Annotated[PinchMix | MonolingualMix | KLangMix | WeightedMix, Field(discriminator="kind")]


class MixRecipe(Schema):
    seed: int = 0
    output_dir: str
    num_shards: int = Field(1, ge=1)
    mixture: Mixture
    contamination: BuildCheck | None = Field(None, description="n-gram check against eval sets, in the manifest")


def _sample(rng: random.Random, items: list[Record], k: int, what: str) -> list[Record]:
    if k > len(items):
        raise RecipeError(f"{what}: need {k} examples, the source has {len(items)}")
    return rng.sample(items, k)


def build_pinch(cfg: PinchMix, seed: int, ledger: list[SourceRead]) -> tuple[list[Record], dict[str, Any]]:
    english = load_source(cfg.english, ledger)
    pool = load_source(cfg.multilingual, ledger)
    plan = pinch_plan(len(english), cfg.langs, cfg.percent, cfg.count, cfg.remainder, seed)
    rng = random.Random(seed)
    positions = list(range(len(english)))
    rng.shuffle(positions)
    chosen = positions[: plan.replaced]
    by_lang: dict[str, dict[str, Record]] = {}
    for rec in pool:
        by_lang.setdefault(rec.lang, {}).setdefault(rec.meta.get("source_id", rec.id), rec)
    out = list(english)
    start = 0
    parallel_hits = 0
    for lang, k in plan.per_language.items():
        avail = by_lang.get(lang, {})
        slots = chosen[start:start + k]
        start += k
        used: set[str] = set()
        spare = sorted(avail)
        rng.shuffle(spare)
        # Without a parallel translation, prefer pool examples whose source is not in this language's slots at all.
        slot_sids = {english[p].meta.get("source_id", english[p].id) for p in slots}
        spare = [s for s in spare if s not in slot_sids] + [s for s in spare if s in slot_sids]
        for pos in slots:
            sid = english[pos].meta.get("source_id", english[pos].id)
            if cfg.parallel and sid in avail and sid not in used:
                pick = sid
                parallel_hits += 1
            else:
                pick = next((s for s in spare if s not in used), None)
                if pick is None:
                    raise RecipeError(f"pinch: the multilingual pool has {len(avail)} examples of {lang}, need {k}")
            used.add(pick)
            rec = avail[pick]
            out[pos] = Record(rec.id if rec.id != english[pos].id else f"{rec.id}:{lang}", rec.lang,
                              dict(rec.fields), {**rec.meta, "replaces": english[pos].id})
    return out, {"plan": plan.to_json(), "parallel_replacements": parallel_hits}


def build(cfg: MixRecipe) -> tuple[list[Record], dict[str, Any], list[SourceRead]]:
    """(records, plan info, what each source read gave: counts and bad lines for the quarantine)."""
    ledger: list[SourceRead] = []
    records, info = _build(cfg, ledger)
    info["sources"] = [r.info for r in ledger]
    info["bad_lines"] = sum(len(r.bad) for r in ledger)
    return records, info, ledger


def _build(cfg: MixRecipe, ledger: list[SourceRead]) -> tuple[list[Record], dict[str, Any]]:
    m, seed = cfg.mixture, cfg.seed
    rng = random.Random(seed)
    if isinstance(m, PinchMix):
        return build_pinch(m, seed, ledger)
    if isinstance(m, MonolingualMix):
        lang = get_language(m.lang).flores
        items = [r for r in load_source(m.source, ledger) if r.lang == lang]
        picked = items if m.budget is None else _sample(rng, items, m.budget, f"monolingual {lang}")
        return picked, {"plan": {"lang": lang, "available": len(items), "count": len(picked)}}
    if isinstance(m, KLangMix):
        langs = list(dict.fromkeys(get_language(x).flores for x in m.langs))
        counts = even_split(m.budget, langs)
        items = load_source(m.source, ledger)
        taken: set[str] = set()
        out = []
        for lang in langs:
            cands = [r for r in items if r.lang == lang and
                     (not m.distinct_sources or r.meta.get("source_id", r.id) not in taken)]
            picked = _sample(rng, cands, counts[lang], f"k-language {lang}")
            taken.update(r.meta.get("source_id", r.id) for r in picked)
            out += picked
        return out, {"plan": {"langs": langs, "budget": m.budget, "per_language": counts, "rule": "largest remainder"}}
    counts = apportion(m.budget, {str(i): it.weight for i, it in enumerate(m.sources)})
    out = []
    for i, it in enumerate(m.sources):
        out += _sample(rng, load_source(it.source, ledger), counts[str(i)], f"weighted source {i}")
    plan = {"budget": m.budget, "per_source": [{"source": it.source.path, "weight": it.weight,
                                                 "count": counts[str(i)]} for i, it in enumerate(m.sources)]}
    return out, {"plan": plan}


def uniform_meta(rec: Record) -> Record:
    """Records from different builders carry different meta keys; one JSON dataset needs one schema, so a mixture's
    meta is flat and same-typed: source id, language of origin, what it replaced, and the original meta as JSON."""
    meta = rec.meta
    flat = {"source_id": str(meta.get("source_id", rec.id)), "replaces": str(meta.get("replaces", "")),
            "origin_meta": json.dumps({k: v for k, v in meta.items() if k not in ("source_id", "replaces")},
                                      ensure_ascii=False, sort_keys=True, default=str)}
    return Record(rec.id, rec.lang, {"messages": rec["messages"]}, flat)  # Alpaca fields stay out: one schema


class EmitStage:
    """Writes the selected records through the runner (markers, resume, manifest counts)."""

    name = "dataset/mix"
    batch_size = 256
    one_to_one = True

    def process(self, batch: list[Record]) -> list:
        from mlift.runner.stage import Outcome

        return [Outcome.keep(uniform_meta(r)) for r in batch]
