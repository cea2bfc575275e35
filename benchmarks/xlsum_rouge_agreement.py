"""Agreement of mlift's ROUGE with the XL-Sum authors' scorer on real XL-Sum articles, per language.

Predictions are lead-1 and lead-3 summaries (the article's first sentences) of every article in
../shared/data/xlsum/<language>_{train,val,test}.jsonl; references are the gold summaries. The reference is
multilingual_rouge's own RougeScorer with the authors' settings (`lang=<XL-Sum name>, use_stemmer=True`), except that
Snowball's stopword option is off when NLTK's stopwords corpus is not installed (it is a download). Prints, per
language and ROUGE type, the mean F1 (x100) of the reference, of mlift's "unicode" mode (before) and of its "xlsum"
mode (after), and the differences; with --bootstrap also the bootstrap mid the XL-Sum scripts print (seeded).

    .venv/bin/python benchmarks/xlsum_rouge_agreement.py --data-dir ../shared/data/xlsum
"""

from __future__ import annotations

import argparse
import json
import re
from functools import partial
from pathlib import Path

TYPES = ("rouge1", "rouge2", "rougeL")
_SENT_END = re.compile(r"(?<=[.!?।။။。！？])\s*")


def lead(text: str, k: int) -> str:
    sents = [s for s in _SENT_END.split(" ".join(text.split())) if s.strip()]
    return " ".join(sents[:k])


def load_pairs(data_dir: Path, language: str, k: int) -> tuple[list[str], list[str]]:
    preds, refs = [], []
    for split in ("train", "val", "test"):
        path = data_dir / f"{language}_{split}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                preds.append(lead(row["text"], k))
                refs.append(row["summary"])
    return preds, refs


def reference_scorer(language: str):
    """The authors' scorer as their scripts call it; Snowball without stopwords only when the corpus is missing."""
    from multilingual_rouge import rouge_scorer, stemmers

    from mlift.eval.xlsum_rouge import have_nltk_stopwords

    if not have_nltk_stopwords():
        from nltk.stem import SnowballStemmer

        for name in SnowballStemmer.languages:
            stemmers.LANG2STEMMER[name] = partial(stemmers.NLTKStemmer, name, ignore_stopwords=False)
    return rouge_scorer.RougeScorer(list(TYPES), use_stemmer=True, lang=language)


def reference_means(language: str, preds: list[str], refs: list[str]) -> dict[str, float]:
    scorer = reference_scorer(language)
    totals = dict.fromkeys(TYPES, 0.0)
    for p, r in zip(preds, refs, strict=True):
        s = scorer.score(r, p)
        for t in TYPES:
            totals[t] += s[t].fmeasure
    return {t: 100.0 * v / len(preds) for t, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/xlsum"))
    parser.add_argument("--lead", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--bootstrap", action="store_true", help="also print the bootstrap mid (1000 resamples)")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    from mlift.eval import metrics, xlsum_rouge

    data_dir = Path(args.data_dir)
    languages = sorted({p.name.rsplit("_", 1)[0] for p in data_dir.glob("*_test.jsonl")})
    print(f"{'language':20s} lead type   ref    before(unicode) d_before  after(xlsum) d_after"
          + ("  mid(bootstrap)" if args.bootstrap else ""))
    worst_before = worst_after = 0.0
    for language in languages:
        for k in args.lead:
            preds, refs = load_pairs(data_dir, language, k)
            ref = reference_means(language, preds, refs)
            before = metrics.rouge(preds, refs, lang=language, mode="unicode")
            after = metrics.rouge(preds, refs, lang=language, mode="xlsum")
            mid = xlsum_rouge.bootstrap(preds, refs, language, TYPES) if args.bootstrap else {}
            for t in TYPES:
                db, da = before[t] - ref[t], after[t] - ref[t]
                worst_before, worst_after = max(worst_before, abs(db)), max(worst_after, abs(da))
                print(f"{language:20s} {k:4d} {t:6s} {ref[t]:6.2f} {before[t]:10.2f} {db:+13.2f} {after[t]:10.2f}"
                      f" {da:+10.4f}" + (f" {mid[t][1]:12.2f}" if mid else ""))
    print(f"max |before - ref| = {worst_before:.2f} points; max |after - ref| = {worst_after:.4f} points")


if __name__ == "__main__":
    main()
