"""Small text utilities shared by the stages: sentence spans, token counts, language ID, shingles."""

from __future__ import annotations

import unicodedata
from collections import Counter

import regex

# A sentence ends at an end mark followed by space (. ! ? ; and the Arabic/Urdu ؟ ۔ ؛, Devanagari । ॥, Armenian ։,
# Ethiopic ። ፧ ፨, Khmer ។ ៕, Myanmar ။, Tibetan ། when spaced), optionally after closing quotes/brackets (French
# « ... » with its space before », Hindi । ”); the CJK
# full-width enders 。！？ end one even without a space. Ethiopic/Khmer/Myanmar/Devanagari marks end one before a
# non-space too (no space is needed after them in running text).
_CLOSE = "\"'’”»)\\]」』）】"
_CLOSE_SPACED = _CLOSE + "“"  # German closes with “; before a space it is never an opening quote
_SENT_END = regex.compile(
    rf"(?<=[.!?;؟۔؛։।॥።፧፨។៕။།](?:[{_CLOSE_SPACED}]|[ \u00a0\u2009\u202f]+[»”])*)\s+(?![\s»”])"
    r"|(?<=\p{sc=Deva}\s?\|)\s+"  # FLORES-style Hindi types the danda as |
    rf"|(?<=[。！？][{_CLOSE}]*)(?![{_CLOSE}])\s*"
    rf"|(?<=[।॥።፧។៕။][{_CLOSE}]*)(?![{_CLOSE}])(?=\S)"
)
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}_]+")
# Scripts written without spaces between words: letters (with their marks) per English-word equivalent, calibrated on
# parallel text: Han 1.59 (FLORES devtest zho_Hans chars / eng_Latn words), Han+kana in Japanese 2.31 (jpn_Jpan);
# Thai 4.18, Lao 4.39, Khmer 4.94, Myanmar 6.02 (10 written sentences each with English glosses,
# tests/data/written_sentences.json: a rough rate). Hangul is spaced: counted by words.
_UNSPACED = regex.compile(r"\p{sc=Han}+|[\p{sc=Hiragana}\p{sc=Katakana}ー]+|\p{sc=Thai}+|\p{sc=Lao}+|\p{sc=Khmer}+"
                          r"|\p{sc=Myanmar}+")
_RATE = {"Han": 1.59, "Kana": 2.31, "Thai": 4.18, "Lao": 4.39, "Khmer": 4.94, "Myanmar": 6.02}
_CJK = regex.compile(r"[\p{sc=Han}\p{sc=Hiragana}\p{sc=Katakana}]")  # kept for callers that mark CJK text


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in text[start:end], whitespace trimmed, offsets into `text`."""
    end = len(text) if end is None else end
    spans, pos = [], start
    chunk = text[start:end]
    for m in _SENT_END.finditer(chunk):
        cut = start + m.start()
        spans.append((pos, cut))
        pos = start + m.end()
    spans.append((pos, end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Paragraphs = lines (a blank line or a newline both end one); offsets into `text`."""
    spans, pos = [], 0
    for line in text.split("\n"):
        a, b = pos, pos + len(line)
        pos = b + 1
        if line.strip():
            spans.append((a, b))
    return spans


def _run_script(run: str) -> str:
    c = run[0]
    if "\u0e00" <= c <= "\u0e7f":
        return "Thai"
    if "\u0e80" <= c <= "\u0eff":
        return "Lao"
    if "\u1780" <= c <= "\u17ff" or "\u19e0" <= c <= "\u19ff":
        return "Khmer"
    if "\u1000" <= c <= "\u109f" or "\uaa60" <= c <= "\uaa7f" or "\ua9e0" <= c <= "\ua9ff":
        return "Myanmar"
    if regex.match(r"[\p{sc=Hiragana}\p{sc=Katakana}ー]", c):
        return "Kana"
    return "Han"


def word_count(text: str, script: str | None = None) -> int:
    """Tokens as English-word equivalents: words of spaced scripts (Latin, Cyrillic, Arabic, Indic, Hangul, ...) plus
    unspaced runs (Han, kana, Thai, Lao, Khmer, Myanmar) at their calibrated letters per word. In Japanese text
    (script "Jpan") Han counts at the Japanese rate."""
    units = 0.0
    for m in _UNSPACED.finditer(text):
        kind = _run_script(m.group())
        if kind == "Han" and script == "Jpan":
            kind = "Kana"
        units += len(m.group()) / _RATE[kind]
    words = len(_WORD.findall(_UNSPACED.sub(" ", text)))
    return words + round(units) if units >= 0.5 else words + (1 if units > 0 else 0)


class TokenCounter:
    """Words per script by default (`word_count`: no model); an HF tokenizer when the recipe names one."""

    def __init__(self, tokenizer: str | None = None, script: str | None = None):
        self.tok = None
        self.script = script
        if tokenizer:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(tokenizer)

    def __call__(self, text: str) -> int:
        if self.tok is not None:
            return len(self.tok(text, add_special_tokens=False)["input_ids"])
        return word_count(text, self.script)


def alpha_fraction(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if unicodedata.category(c)[0] in "LM") / len(chars)


def top_ngram_fraction(text: str, n: int = 3) -> float:
    words = _WORD.findall(text.lower())
    if len(words) < n + 2:
        return 0.0
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    return count * sum(len(w) for w in gram) / max(1, sum(len(w) for w in words)) if count > 1 else 0.0


def repeated_line_fraction(text: str) -> float:
    lines = [x.strip() for x in text.split("\n") if x.strip()]
    if len(lines) < 2:
        return 0.0
    counts = Counter(lines)
    return sum(c for c in counts.values() if c > 1) / len(lines)


def word_ngrams(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())
# Scripts written without spaces between words: score them per character (no segmenter is assumed installed).
_CHAR_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_TOKEN_RE = regex.compile(rf"[{_CHAR_SCRIPTS}][\p{{M}}]*|[^\s\p{{P}}\p{{S}}{_CHAR_SCRIPTS}\p{{C}}\p{{Z}}]+")
_STEMMED_LANGS = {"en", "eng"}


def _lang_short(lang: str | None) -> str | None:
    if not lang:
        return None
    try:
        from mlift.languages import get_language

        return get_language(lang).short
    except ValueError:
        return lang.split("_")[0].lower()


class MultilingualTokenizer:
    """A rouge-score compatible tokenizer (`.tokenize(text) -> list[str]`) that works for every script."""

    def __init__(self, lang: str | None = None, stem: bool | None = None):
        short = _lang_short(lang)
        self.stem = (short in _STEMMED_LANGS) if stem is None else stem
        self._stemmer = None
        if self.stem:
            from nltk.stem import porter

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        tokens = _TOKEN_RE.findall(text)
        if self._stemmer is not None:
            # rouge-score stems only tokens longer than 3 characters; do the same so English matches it exactly.
            tokens = [self._stemmer.stem(t) if len(t) > 3 else t for t in tokens]
        return tokens


