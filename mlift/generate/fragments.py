"""Stage 1: cut documents into response-sized fragments and filter them (length, language ID, boilerplate, repetition).

Fragments are runs of whole sentences; a paragraph end is the preferred cut. Each fragment is the exact span
text[start:end] of its document, so `meta.source.start/end` point back into the source. Exact and near duplicates
are removed afterwards across all shards (mlift.generate.dedup). Not one-to-one: a document yields many fragments;
every candidate fragment is kept or dropped with its reason, and a document that yields none is quarantined.
"""

from __future__ import annotations

import re

from mlift.data.text import (
    TokenCounter,
    alpha_fraction,
    paragraph_spans,
    repeated_line_fraction,
    sentence_spans,
    top_ngram_fraction,
)
from mlift.generate.config import FragmentsConfig, LangIDConfig
from mlift.langid import LanguageCheck, UnsupportedLanguage
from mlift.languages import get_language
from mlift.recipe import RecipeError
from mlift.records import Record
from mlift.runner.stage import Outcome


def language_check(cfg: FragmentsConfig, lang: str) -> LanguageCheck | None:
    """The lang-ID check for `lang` as the recipe chose it; a language no chosen detector knows is a recipe error."""
    return langid_check(cfg.langid, lang)


def langid_check(c: LangIDConfig, lang: str) -> LanguageCheck | None:
    """The same, from the `fragments.langid` section alone (stage 5 checks its instructions with it)."""
    if not c.enabled:
        return None
    per = {get_language(k).flores: v for k, v in c.per_language.items()}
    method = per.get(get_language(lang).flores, c.detector)
    try:
        return LanguageCheck(lang, method, c.unsupported, c.min_score, c.min_script_frac, c.model, c.lingua_accuracy)
    except UnsupportedLanguage as exc:
        raise RecipeError(str(exc)) from None


def check_languages(cfg: FragmentsConfig, langs: list[str]) -> dict[str, str]:
    """Language -> lang-ID method, for all languages of a run before it starts (all unsupported ones in one error)."""
    out, errors = {}, []
    for lang in langs:
        try:
            chk = language_check(cfg, lang)
            out[get_language(lang).flores] = chk.method if chk else "none"
        except RecipeError as exc:
            errors.append(str(exc))
    if errors:
        raise RecipeError("\n".join(errors))
    return out


def cut(text: str, count, min_tokens: int, max_tokens: int, max_sentences: int) -> list[tuple[int, int, int, str]]:
    """(start, end, tokens, status) for each candidate; status "" (ok), "too_short" or "too_long"."""
    sents = []  # (start, end, tokens, paragraph_end)
    for pa, pb in paragraph_spans(text):
        spans = sentence_spans(text, pa, pb)
        for k, (a, b) in enumerate(spans):
            sents.append((a, b, count(text[a:b]), k == len(spans) - 1))
    out: list[tuple[int, int, int, str]] = []
    cur: list[tuple[int, int, int, bool]] = []

    def flush() -> None:
        if cur:
            a, b = cur[0][0], cur[-1][1]
            tokens = count(text[a:b])
            out.append((a, b, tokens, "" if tokens >= min_tokens else "too_short"))
            cur.clear()

    for s in sents:
        if s[2] > max_tokens:  # one sentence over the bound: its own candidate, dropped as too long
            flush()
            out.append((s[0], s[1], s[2], "too_long"))
            continue
        if cur and (sum(x[2] for x in cur) + s[2] > max_tokens or len(cur) >= max_sentences):
            flush()
        cur.append(s)
        if s[3] and sum(x[2] for x in cur) >= min_tokens:  # a paragraph end with enough text: cut here
            flush()
    flush()
    return out


class FragmentStage:
    name = "fragments"
    one_to_one = False

    def __init__(self, cfg: FragmentsConfig, lang: str, batch_size: int = 16):
        self.cfg = cfg
        self.lang = get_language(lang)
        self.langcheck = language_check(cfg, lang)
        self.count = TokenCounter(cfg.tokenizer, self.lang.script)
        self.boiler = [re.compile(p) for p in cfg.boilerplate_patterns]
        self.batch_size = batch_size

    def check(self, frag: str) -> tuple[str, str, dict]:
        """(reason, detail, scores): reason "" = passes."""
        c = self.cfg
        scores: dict = {"alpha": round(alpha_fraction(frag), 3)}
        if scores["alpha"] < c.min_alpha_frac:
            return "non_text", f"letters {scores['alpha']:.2f} < {c.min_alpha_frac}", scores
        for pat in self.boiler:
            if pat.search(frag):
                return "boilerplate", pat.pattern, scores
        rep_lines, rep_ngram = repeated_line_fraction(frag), top_ngram_fraction(frag)
        if rep_lines > c.max_repeated_line_frac or rep_ngram > c.max_top_ngram_frac:
            return "repetition", f"lines {rep_lines:.2f}, top 3-gram {rep_ngram:.2f}", scores
        if self.langcheck is not None:
            ok, why, lang_scores = self.langcheck.check(frag)
            scores.update(lang_scores)
            if not ok:
                return "lang_id", why, scores
        return "", "", scores

    def process(self, batch: list[Record]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        c = self.cfg
        for doc in batch:
            text = doc.get("text")
            if not isinstance(text, str) or not text.strip():
                outcomes.append(Outcome.quarantine(doc, "empty_document", "no text"))
                continue
            pieces = cut(text, self.count, c.min_tokens, c.max_tokens, c.max_sentences)
            if not pieces:
                outcomes.append(Outcome.quarantine(doc, "no_fragments", "no sentence found"))
                continue
            kept = 0
            for k, (a, b, tokens, status) in enumerate(pieces):
                frag = text[a:b]
                rec = Record(id=f"{doc.id}#{k}", lang=self.lang.flores, fields={"fragment": frag},
                             meta={"source": {**doc.meta.get("source", {}), "start": a, "end": b}, "tokens": tokens})
                if status:
                    limit = c.min_tokens if status == "too_short" else c.max_tokens
                    outcomes.append(Outcome.drop(rec, status, f"{tokens} tokens (bound {limit})"))
                    continue
                if c.max_per_doc is not None and kept >= c.max_per_doc:
                    outcomes.append(Outcome.drop(rec, "max_per_doc", f"document already gave {kept}"))
                    continue
                reason, detail, scores = self.check(frag)
                rec.meta["filters"] = scores
                if reason:
                    outcomes.append(Outcome.drop(rec, reason, detail))
                else:
                    kept += 1
                    outcomes.append(Outcome.keep(rec))
        return outcomes
