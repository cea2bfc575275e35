"""Token counts and sentence ends per script, on FLORES devtest lines (../shared) and on short sentences written for
scripts not there (tests/data/written_sentences.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlift.data.text import TokenCounter, sentence_spans, word_count

WRITTEN = json.loads((Path(__file__).parent / "data" / "written_sentences.json").read_text(encoding="utf-8"))


def _flores(shared_dir, code: str) -> list[str]:
    return (shared_dir / "data" / "flores200" / "devtest" / f"{code}.devtest").read_text(encoding="utf-8").splitlines()


def test_counts_track_english_words_on_flores(shared_dir):
    """FLORES is parallel: per language, total tokens / English words stays near 1 (0.6-1.6) in every script."""
    eng = sum(word_count(x) for x in _flores(shared_dir, "eng_Latn"))
    for f in sorted((shared_dir / "data" / "flores200" / "devtest").glob("*.devtest")):
        script = f.stem.split("_")[1]
        ratio = sum(word_count(x, script) for x in _flores(shared_dir, f.stem)) / eng
        assert 0.6 <= ratio <= 1.6, (f.stem, ratio)


@pytest.mark.parametrize("lang", ["kor_Hang", "tha_Thai", "lao_Laoo", "khm_Khmr", "mya_Mymr"])
def test_counts_track_english_glosses_on_written(lang):
    ours = sum(word_count(x, lang.split("_")[1]) for x in WRITTEN[lang])
    eng = sum(word_count(x) for x in WRITTEN[lang + "_en"])
    assert 0.6 <= ours / eng <= 1.5, (lang, ours, eng)


def test_hangul_counts_words_not_syllables():
    s = WRITTEN["kor_Hang"][0]  # 10 space-separated words, many more syllables
    assert word_count(s) == len(s.split()) == 10
    assert TokenCounter()(s) == 10


def test_unspaced_scripts_count_by_rate():
    thai = WRITTEN["tha_Thai"][0]  # one space-free run: the old word regex called it 1 word
    assert 10 <= word_count(thai) <= 20
    assert word_count("今天天气很好") == 4  # 6 Han / 1.59
    assert word_count("日本語の文章です", "Jpan") == 3  # 8 characters / 2.31
    assert word_count("हिन्दी भाषा") == 2  # combining vowel signs stay inside the word


ENDS = [
    ("khm_Khmr", "ភ្នំពេញគឺជារាជធានីនៃកម្ពុជា។ប្រាសាទអង្គរវត្តល្បីណាស់។", 2),
    ("mya_Mymr", "ရန်ကုန်မြို့သည် အကြီးဆုံးမြို့ ဖြစ်သည်။ ဧရာဝတီမြစ်သည် အရှည်ဆုံးမြစ် ဖြစ်သည်။", 2),
    ("amh_Ethi", "አዲስ አበባ የኢትዮጵያ ዋና ከተማ ናት።ቡና በኢትዮጵያ ባህል ውስጥ ትልቅ ቦታ አለው። ለምን፧", 3),
    ("hye_Armn", "Երևանը Հայաստանի մայրաքաղաքն է։ Սևանա լիճը ամենամեծ լիճն է։", 2),
    ("hin_Deva", "यह पहला वाक्य है। यह दूसरा वाक्य है॥ और तीसरा।", 3),
    ("urd_Arab", "یہ پہلا جملہ ہے۔ کیا آپ ٹھیک ہیں؟ جی ہاں.", 3),
    ("arb_Arab", "هل أنت بخير؟ نعم. شكرا لك!", 3),
    ("zho_Hans", "今天天气很好。我们去公园吧！好吗？他说：“你好。”然后走了。", 5),
    ("jpn_Jpan", "東京は日本の首都です。大阪にも行きました！", 2),
]


@pytest.mark.parametrize("lang,text,n", ENDS)
def test_sentence_end_marks(lang, text, n):
    spans = sentence_spans(text)
    assert len(spans) == n, [text[a:b] for a, b in spans]
    assert "".join(text[a:b] for a, b in spans) == "".join(text.split()) or all(text[a:b].strip() for a, b in spans)


def test_flores_lines_are_single_sentences(shared_dir):
    """Two FLORES lines joined (a space; nothing for CJK) are cut at the join: every script's end marks are known."""
    for f in sorted((shared_dir / "data" / "flores200" / "devtest").glob("*.devtest")):
        lines = [x.strip() for x in f.read_text(encoding="utf-8").splitlines()]
        sep = "" if f.stem.split("_")[1] in ("Hans", "Hant", "Jpan") else " "
        cut = sum(len(a) in {e for _, e in sentence_spans(a + sep + b)} for a, b in zip(lines, lines[1:]))
        assert cut / (len(lines) - 1) >= 0.95, (f.stem, cut)  # misses: lines without an end mark
