"""Contamination check: word n-gram overlap (13-grams by default, as in GPT-3 / Llama reports) between a training set
and the eval sets in use (XL-Sum test, FLORES-200 devtest, the MMLU variants the suites evaluate: English CSVs, Okapi
m_MMLU JSON, Global-MMLU / OpenAI MMMLU files; any JSONL). Scripts written without spaces
(Chinese, Japanese, Thai...) are tokenized per character so they are checked too. Reports per language; the command
can drop the hits."""

from __future__ import annotations

import csv
import glob
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mlift.data.text import MultilingualTokenizer
from mlift.fingerprint import InputPath, Reads
from mlift.languages import get_language
from mlift.recipe import RecipeError, Schema
from mlift.records import Record

# The metrics' tokenizer, unstemmed: words in any script (Devanagari matras stay inside the word), one token per
# character for scripts written without spaces.
_TOKENIZER = MultilingualTokenizer(stem=False)


def tokens(text: str) -> list[str]:
    return _TOKENIZER.tokenize(text)


def ngrams(text: str, n: int) -> Iterator[tuple[str, ...]]:
    toks = tokens(text)
    for i in range(len(toks) - n + 1):
        yield tuple(toks[i:i + n])


class EvalSet(Schema):
    kind: Literal["xlsum", "flores", "mmlu", "okapi_mmlu", "global_mmlu", "mmmlu", "jsonl"]
    path: InputPath = Field(description="xlsum: dir of <language>_test.jsonl; flores: dir of <code>.devtest; mmlu: dir of "
                                  "*_test.csv; okapi_mmlu: dir of <iso1>_<split>.json (Okapi m_MMLU); global_mmlu: "
                                  "Global-MMLU files, a file or glob (.parquet/.jsonl/.json/.csv: question, option_a.."
                                  "option_d); mmmlu: OpenAI MMMLU CSVs, a file or glob (Question, A..D); jsonl: a file "
                                  "or glob")
    langs: list[str] | None = Field(None, description="xlsum/flores/okapi_mmlu: which languages (default: all files)")
    splits: list[str] = Field(default_factory=lambda: ["val"], description="okapi_mmlu: the splits evaluated (the "
                              "suites' default is val; dev holds the few-shot examples)")
    fields: list[str] = Field(default_factory=lambda: ["text"], description="jsonl: the text fields")
    name: str | None = None


def eval_texts(spec: EvalSet) -> Iterator[tuple[str, str]]:
    """(eval set name, text) for every text of the eval set."""
    root = Path(spec.path)
    if spec.kind == "xlsum":
        names = [get_language(x).xlsum for x in spec.langs] if spec.langs else None
        files = sorted(root.glob("*_test.jsonl"))
        for f in files:
            lang = f.name[: -len("_test.jsonl")]
            if names is not None and lang not in names:
                continue
            for line in f.read_text(encoding="utf-8-sig").splitlines():
                if line.strip():
                    row = json.loads(line)
                    for key in ("text", "summary", "title"):
                        if row.get(key):
                            yield spec.name or f"xlsum_test/{lang}", row[key]
    elif spec.kind == "flores":
        codes = [get_language(x).flores for x in spec.langs] if spec.langs else None
        for f in sorted(root.glob("*.devtest")):
            if codes is not None and f.stem not in codes:
                continue
            for line in f.read_text(encoding="utf-8-sig").splitlines():
                if line.strip():
                    yield spec.name or f"flores_devtest/{f.stem}", line
    elif spec.kind == "mmlu":
        for f in sorted(root.glob("*_test.csv")):
            with open(f, encoding="utf-8-sig", newline="") as fh:
                for row in csv.DictReader(fh):
                    choices = " ".join(row.get(f"choice{i}", "") for i in range(4))
                    yield spec.name or "mmlu_test", f"{row['question']} {choices}"
    elif spec.kind == "okapi_mmlu":
        yield from _okapi_texts(spec, root)
    elif spec.kind in ("global_mmlu", "mmmlu"):
        keys = ("question", "option_a", "option_b", "option_c", "option_d") if spec.kind == "global_mmlu" \
            else ("Question", "A", "B", "C", "D")
        for f in _files(spec):
            for row in _table_rows(f):
                if not row.get(keys[0]):
                    raise RecipeError(f"eval set {f}: a row without {keys[0]!r} (is this {spec.kind} data?)")
                yield spec.name or f"{spec.kind}/{f.parent.name}/{f.stem}", " ".join(str(row.get(k) or "") for k in keys)
    else:
        files = _files(spec)
        for f in files:
            for line in f.read_text(encoding="utf-8-sig").splitlines():
                if line.strip():
                    row = json.loads(line)
                    for key in spec.fields:
                        if isinstance(row.get(key), str):
                            yield spec.name or Path(f).stem, row[key]


def _files(spec: EvalSet) -> list[Path]:
    files = sorted(glob.glob(spec.path)) or ([spec.path] if Path(spec.path).is_file() else [])
    if not files:
        raise RecipeError(f"eval set {spec.path}: no files")
    return [Path(f) for f in files]


def _okapi_texts(spec: EvalSet, root: Path) -> Iterator[tuple[str, str]]:
    shorts = [get_language(x).short for x in spec.langs] if spec.langs else None
    files = [f for split in spec.splits for f in sorted(root.glob(f"*_{split}.json"))
             if shorts is None or f.name.rsplit("_", 1)[0] in shorts]
    if not files:
        raise RecipeError(f"eval set {root}: no Okapi m_MMLU files <lang>_{{{','.join(spec.splits)}}}.json")
    for f in files:
        for row in json.loads(f.read_text(encoding="utf-8-sig")):
            text = " ".join(str(row.get(k) or "") for k in ("instruction", "option_a", "option_b", "option_c", "option_d"))
            yield spec.name or f"okapi_mmlu/{f.stem}", text


def _table_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a Parquet, JSON (list), JSONL or CSV file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            yield from csv.DictReader(fh)
    elif path.suffix == ".json":
        yield from json.loads(path.read_text(encoding="utf-8-sig"))
    else:
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                yield json.loads(line)


class NgramIndex:
    """Every n-gram of the eval sets -> the first eval set it came from.

    `boilerplate_texts`: an n-gram found in at least this many eval texts is site boilerplate (BBC's "download our app"
    line closes many XL-Sum Hindi articles, train and test alike), not a leak of one test item, so it is ignored."""

    def __init__(self, n: int = 13, boilerplate_texts: int | None = None):
        self.n = n
        self.boilerplate_texts = boilerplate_texts
        self.grams: dict[int, str] = {}
        self.texts_with: Counter = Counter()  # n-gram hash -> how many eval texts hold it (only with boilerplate_texts)
        self.sizes: Counter = Counter()
        self.boilerplate_ngrams = 0

    def add(self, name: str, text: str) -> None:
        self.sizes[name] += 1
        grams = {hash(g) for g in ngrams(text, self.n)}
        for h in grams:
            self.grams.setdefault(h, name)
        if self.boilerplate_texts:
            self.texts_with.update(grams)

    def drop_boilerplate(self) -> int:
        """Forget the boilerplate n-grams (call once all eval texts are in); return how many."""
        if not self.boilerplate_texts:
            return 0
        common = [h for h, k in self.texts_with.items() if k >= self.boilerplate_texts]
        for h in common:
            self.grams.pop(h, None)
        self.texts_with.clear()
        return len(common)

    def add_all(self, items: Iterable[tuple[str, str]]) -> NgramIndex:
        for name, text in items:
            self.add(name, text)
        return self

    @classmethod
    def build(cls, eval_sets: list[EvalSet], n: int = 13, boilerplate_texts: int | None = None) -> NgramIndex:
        index = cls(n, boilerplate_texts)
        for i, spec in enumerate(eval_sets):
            before = sum(index.sizes.values())
            try:
                index.add_all(eval_texts(spec))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # bad JSON / rows: name the eval set
                if isinstance(exc, RecipeError):
                    raise
                raise RecipeError(f"eval_sets.{i} ({spec.kind}, {spec.path}): unreadable: "
                                  f"{type(exc).__name__}: {exc}") from None
            if sum(index.sizes.values()) == before:  # an empty index would report every dataset clean
                raise RecipeError(f"eval_sets.{i} ({spec.kind}, {spec.path}): no eval text read (is the path and "
                                  "kind right? languages filtered out?)")
        index.boilerplate_ngrams = index.drop_boilerplate()
        return index

    def hits(self, text: str) -> Counter:
        """Matching n-grams per eval set (0 hits: clean)."""
        found: Counter = Counter()
        for g in ngrams(text, self.n):
            name = self.grams.get(hash(g))
            if name is not None:
                found[name] += 1
        return found


def record_text(rec: Record) -> str:
    msgs = rec.get("messages")
    if isinstance(msgs, list):
        return "\n".join(m.get("content", "") for m in msgs if isinstance(m, dict))
    return "\n".join(v for v in rec.fields.values() if isinstance(v, str))


class ContaminationRecipe(Schema):
    seed: int = 0
    dataset: Annotated[str, Reads(files="mlift.data.conversations:local_files")] = Field(description="an mlift run dir (dataset/*/shard-*.jsonl), a JSONL file or a glob")
    output_dir: str
    num_shards: int = Field(1, ge=1)
    n: int = Field(13, ge=1, description="n-gram length in tokens (characters for scripts without spaces)")
    min_hits: int = Field(1, ge=1, description="a record is contaminated with at least this many matching n-grams")
    boilerplate_texts: int | None = Field(None, ge=2, description="ignore n-grams found in at least this many eval "
                                        "texts (site boilerplate, e.g. 2 for the BBC Hindi footer); None: off")
    drop: bool = Field(False, description="drop contaminated records from the written copy (else only flag them)")
    eval_sets: list[EvalSet] = Field(min_length=1)


class ContaminationStage:
    """Flags (meta.contamination) or drops (reason 'contamination') records sharing n-grams with the eval sets."""

    one_to_one = True

    def __init__(self, index: NgramIndex, min_hits: int = 1, drop: bool = False, name: str = "dataset/clean"):
        self.name = name
        self.index = index
        self.min_hits = min_hits
        self.drop = drop
        self.batch_size = 256

    def process(self, batch: list[Record]) -> list:
        from mlift.runner.stage import Outcome

        outcomes = []
        for rec in batch:
            hits = self.index.hits(record_text(rec))
            hit = sum(hits.values()) >= self.min_hits
            # Flat, same-typed keys in every record (datasets infers one schema over all shards).
            rec.meta["contamination_ngrams"] = sum(hits.values()) if hit else 0
            rec.meta["contamination_sets"] = ",".join(sorted(hits)) if hit else ""
            if hit:
                if self.drop:
                    outcomes.append(Outcome.drop(rec, "contamination", ", ".join(f"{k}: {v}" for k, v in hits.items())))
                    continue
            outcomes.append(Outcome.keep(rec))
        return outcomes


def report(records: list[Record], index: NgramIndex, min_hits: int = 1) -> dict[str, Any]:
    """Per language: records, contaminated, rate, and which eval sets they hit."""
    per: dict[str, dict[str, Any]] = {}
    for rec in records:
        row = per.setdefault(rec.lang, {"records": 0, "contaminated": 0, "eval_sets": Counter(), "ids": []})
        row["records"] += 1
        hits = index.hits(record_text(rec))
        if sum(hits.values()) >= min_hits:
            row["contaminated"] += 1
            row["eval_sets"].update(hits.keys())
            row["ids"].append(rec.id)
    for row in per.values():
        row["rate"] = round(row["contaminated"] / row["records"], 6) if row["records"] else 0.0
        row["eval_sets"] = dict(row["eval_sets"])
    total = sum(r["records"] for r in per.values())
    bad = sum(r["contaminated"] for r in per.values())
    return {"n": index.n, "min_hits": min_hits, "records": total, "contaminated": bad,
            "eval_texts": dict(index.sizes), "boilerplate_texts": index.boilerplate_texts,
            "boilerplate_ngrams_ignored": index.boilerplate_ngrams, "per_language": per}


def print_report(rep: dict[str, Any]) -> None:
    for lang, row in sorted(rep["per_language"].items()):
        print(f"contamination {lang}: {row['contaminated']}/{row['records']} ({row['rate']:.2%}) {row['eval_sets']}")


class BuildCheck(Schema):
    """The optional `contamination:` section of a build recipe: report overlaps in the manifest (dropping them is
    `mlift check-contamination ... drop: true`)."""

    n: int = Field(13, ge=1)
    min_hits: int = Field(1, ge=1)
    boilerplate_texts: int | None = Field(None, ge=2, description="ignore n-grams found in at least this many eval "
                                        "texts (site boilerplate, e.g. 2 for the BBC Hindi footer); None: off")
    eval_sets: list[EvalSet] = Field(min_length=1)

    def index(self) -> NgramIndex:
        return NgramIndex.build(self.eval_sets, self.n, self.boilerplate_texts)


class GenerateCheck(BuildCheck):
    """The `contamination:` section of a generate recipe: every final pair (instruction in L + native response) is
    checked; hits are flagged (meta.contamination_ngrams / contamination_sets) or dropped (reason 'contamination'),
    and the funnel counts both."""

    drop: bool = Field(False, description="drop contaminated pairs (else keep them, flagged)")


def check_records(records: list[Record], check: BuildCheck) -> dict[str, Any]:
    return report(records, check.index(), check.min_hits)
