"""Near-dedup against the anchor: mlift's MinHash (mlift.generate.dedup: numpy MinHash + LSH, char 5-grams, estimated
Jaccard >= 0.8 checked against the bucket's first) vs datatrove's MinHash pipeline (MinhashDedupSignature ->
MinhashDedupBuckets -> MinhashDedupCluster -> MinhashDedupFilter under LocalPipelineExecutor, its defaults: word 5-grams
from its per-language spaCy tokenizer, 14 buckets x 8 hashes (sha1 shingle hashes, see run_datatrove), any bucket match = duplicate, union-find clusters).

Fragments: real sentences from ../shared (FLORES-200 devtest, UDHR, XL-Sum articles, Alpaca outputs) of the 7 languages
datatrove can tokenize here without a download (eng fra spa deu rus swh zho_Hans; arb/hin need stanza, jpn sudachi),
each fragment 4-5 sentences of the language's pool, no two fragments sharing more than two sentences (partial
overlap, but never a duplicate), plus planted copies of earlier fragments: 8% near-duplicates with 1-3 small edits (a word replaced, dropped or
repeated, punctuation or case changed; characters for Chinese) and 2% exact copies. Each tool runs per language (as
mlift's dedup step does), one process per language (`--workers` of them at once; peak RSS is the largest, CPU the sum,
wall the whole). Prints time, peak RSS, removed counts, recall of the
planted copies, and the Jaccard of the two removed-id sets.

    nice python benchmarks/dedup_vs_datatrove.py 200000     # total fragments over the 7 languages (default 200k)
    nice python benchmarks/dedup_vs_datatrove.py 1000000 --workers 2   # two languages at a time
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLIFT_SHARED", REPO.parent / "shared"))
# mlift language -> (FLORES file, UDHR file, XL-Sum name, Alpaca file, datatrove language)
LANGS = {
    "eng_Latn": ("eng_Latn", "eng", "english", "alpaca_en_demo.json", "eng"),
    "fra_Latn": ("fra_Latn", "fra", "french", None, "fra"),
    "spa_Latn": ("spa_Latn", "spa", "spanish", None, "spa"),
    "deu_Latn": ("deu_Latn", "deu", None, None, "deu"),
    "rus_Cyrl": ("rus_Cyrl", "rus", "russian", None, "rus"),
    "swh_Latn": ("swh_Latn", "swh", None, None, "swh"),
    "zho_Hans": ("zho_Hans", "cmn_hans", "chinese_simplified", "alpaca_zh_demo.json", "cmn"),
}
_SENT = re.compile(r"(?<=[.!?。！？])\s*")


def sources(lang: str) -> list[list[str]]:
    """Lists of sentences, one per source document (kept in order, so windows are like one document's)."""
    flores, udhr, xlsum, alpaca, _ = LANGS[lang]
    docs = [[x.strip() for x in (SHARED / f"data/flores200/devtest/{flores}.devtest").read_text("utf-8").splitlines()
             if x.strip()]]
    docs.append([x.strip() for x in (SHARED / f"data/udhr/{udhr}.txt").read_text("utf-8").splitlines() if len(x) > 20])
    if xlsum:
        for split in ("train", "val", "test"):
            for line in (SHARED / f"data/xlsum/{xlsum}_{split}.jsonl").read_text("utf-8").splitlines():
                docs.append([s for s in _SENT.split(json.loads(line)["text"]) if len(s) > 10])
    if alpaca:
        docs.append([r["output"].replace("\n", " ") for r in json.loads((SHARED / f"data/alpaca/{alpaca}").read_text("utf-8"))
                     if len(r["output"]) > 20])
    return [d for d in docs if len(d) >= 4]


def edit(text: str, rng: random.Random, cjk: bool) -> str:
    """1-3 small edits: the kind of difference between two copies of one web text."""
    units = list(text) if cjk else text.split()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(units))
        op = rng.randrange(5)
        if op == 0:
            units[i] = units[rng.randrange(len(units))]
        elif op == 1 and len(units) > 8:
            del units[i]
        elif op == 2:
            units.insert(i, units[i])
        elif op == 3:
            units[i] = units[i].strip(".,;:!?") if units[i][-1:] in ".,;:!?" else units[i] + ","
        else:
            units[i] = units[i].upper() if not cjk else "，"
    return ("" if cjk else " ").join(units)


def make_fragments(path: Path, lang: str, n: int, seed: int = 0) -> set[str]:
    """Writes n fragments as JSONL {id, text}; returns the ids of the planted copies (the ground truth)."""
    rng = random.Random(f"{seed}-{lang}")
    pool = [s for doc in sources(lang) for s in doc]  # every real sentence of the language, ~1-2k
    m = len(pool)
    cjk = lang.startswith("zho")
    planted, made = set(), []
    used: set[int] = set()

    def fresh() -> str:
        """4-5 real sentences, no three of them used together before: two original fragments share at most two
        sentences (sentence Jaccard <= 1/3, far under any threshold), so every duplicate is a planted one. The pool's
        C(m, 3) triples are what lets a few thousand sentences make 1M distinct fragments."""
        for _ in range(1000):
            picks = sorted(rng.sample(range(m), rng.randint(4, 5)))
            triples = {(a * m + b) * m + c for i, a in enumerate(picks) for j, b in enumerate(picks[i + 1:], i + 1)
                       for c in picks[j + 1:]}
            if not triples & used:
                used.update(triples)
                return ("" if cjk else " ").join(pool[j] for j in picks)
        raise RuntimeError(f"{lang}: too few sentences ({m}) for this many distinct fragments")

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            r = rng.random()
            if made and r < 0.10:
                src = made[rng.randrange(len(made))]
                text = src if r < 0.02 else edit(src, rng, cjk)
                planted.add(f"{lang}-{i}")
            else:
                text = fresh()
            made.append(text)
            fh.write(json.dumps({"id": f"{lang}-{i}", "text": text}, ensure_ascii=False) + "\n")
    return planted


def peak_rss_mb() -> float:
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_mlift(files: dict[str, Path]) -> set[str]:
    from mlift.generate.config import DedupConfig
    from mlift.generate.dedup import plan_dedup
    from mlift.records import Record

    def records(path: Path, lang: str):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                yield Record(obj["id"], lang, {"fragment": obj["text"]})

    removed: set[str] = set()
    for lang, path in files.items():
        removed |= set(plan_dedup(records(path, lang), DedupConfig(), seed=0)["drop"])
    return removed


def run_datatrove(files: dict[str, Path], work: Path) -> set[str]:
    import gzip

    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    # datatrove's defaults, but its sha1 shingle hash: its default xxhash path passes str to xxhash, which the installed
    # xxhash refuses ("TypeError: Strings must be encoded before hashing")
    cfg = MinhashConfig(hash_config=HashConfig(hash_fc="sha1"))
    removed: set[str] = set()
    for lang, path in files.items():
        w = work / lang

        def reader(path: Path = path) -> JsonlReader:
            return JsonlReader(str(path.parent), glob_pattern=path.name, text_key="text", id_key="id")

        steps = [
            ([reader(), MinhashDedupSignature(output_folder=str(w / "sigs"), config=cfg, language=LANGS[lang][4])], 1),
            ([MinhashDedupBuckets(input_folder=str(w / "sigs"), output_folder=str(w / "buckets"), config=cfg)],
             cfg.num_buckets),
            ([MinhashDedupCluster(input_folder=str(w / "buckets"), output_folder=str(w / "remove"), config=cfg)], 1),
            ([reader(), MinhashDedupFilter(input_folder=str(w / "remove"),
                                           exclusion_writer=JsonlWriter(str(w / "removed"), compression="gzip")),
              JsonlWriter(str(w / "kept"), compression="gzip")], 1),
        ]
        for i, (pipeline, tasks) in enumerate(steps):
            LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(w / f"logs{i}"),
                                  skip_completed=False).run()
        for f in (w / "removed").glob("*.jsonl.gz"):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                removed |= {json.loads(line)["id"] for line in fh}
    return removed


def one(tool: str, data: Path, lang: str) -> dict:
    """One tool on one language, in this (fresh) process."""
    files = {lang: data / lang / "fragments.jsonl"}
    t0, c0 = time.perf_counter(), time.process_time()
    if tool == "mlift":
        removed = run_mlift(files)
    else:
        os.environ.setdefault("DATATROVE_COLORIZE_LOGS", "0")
        from loguru import logger

        logger.remove()  # datatrove logs every step at INFO; keep stdout for the figures
        removed = run_datatrove(files, data / "datatrove")
    t, cpu = time.perf_counter() - t0, time.process_time() - c0
    (data / f"{tool}.{lang}.removed").write_text("\n".join(sorted(removed)), encoding="utf-8")
    # cpu_s: this process's CPU time (both tools run in-process, datatrove with workers=1): the figure a shared
    # machine keeps
    return {"seconds": t, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb(), "removed": len(removed)}


def run_tool(tool: str, data: Path, workers: int) -> tuple[dict, set[str]]:
    """Every language in its own process, `workers` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))

    def lang_run(lang: str) -> dict:
        res = subprocess.run([sys.executable, __file__, "--one", tool, str(data), lang], capture_output=True, text=True,
                             env=env)
        if res.returncode:
            raise SystemExit(f"{tool} {lang} failed:\n{res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lang_run, LANGS))
    removed: set[str] = set()
    for lang in LANGS:
        text = (data / f"{tool}.{lang}.removed").read_text(encoding="utf-8")
        removed |= set(text.split("\n")) if text else set()
    fig = {"tool": tool, "seconds": round(time.perf_counter() - t0, 1), "cpu_s": round(sum(p["cpu_s"] for p in parts), 1),
           "peak_rss_mb": round(max(p["peak_rss_mb"] for p in parts)), "removed": len(removed)}
    return fig, removed


def main(argv: list[str]) -> int:
    workers = 1
    if "--workers" in argv:  # languages run at once, each in its own process
        i = argv.index("--workers")
        workers = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if argv and argv[0] == "--one":
        print(json.dumps(one(argv[1], Path(argv[2]), argv[3])))
        return 0
    n = int(argv[0]) if argv else 200_000
    data = Path(tempfile.mkdtemp(prefix="mlift-dedupbench-"))
    planted: set[str] = set()
    per_lang = n // len(LANGS)
    t0 = time.perf_counter()
    for lang in LANGS:
        (data / lang).mkdir()
        planted |= make_fragments(data / lang / "fragments.jsonl", lang, per_lang)
    mb = sum(f.stat().st_size for f in data.glob("*/fragments.jsonl")) / 1e6
    print(json.dumps({"fragments": per_lang * len(LANGS), "languages": list(LANGS), "planted_copies": len(planted),
                      "jsonl_mb": round(mb), "seconds_to_make": round(time.perf_counter() - t0)}), flush=True)
    removed = {}
    for tool in ("mlift", "datatrove"):
        fig, removed[tool] = run_tool(tool, data, workers)
        fig["planted_recall"] = round(len(removed[tool] & planted) / max(1, len(planted)), 3)
        fig["removed_not_planted"] = len(removed[tool] - planted)
        fig["cpu_us_per_fragment"] = round(1e6 * fig["cpu_s"] / (per_lang * len(LANGS)), 1)
        print(json.dumps(fig), flush=True)
    a, b = removed["mlift"], removed["datatrove"]
    print(json.dumps({"jaccard_removed_sets": round(len(a & b) / max(1, len(a | b)), 3), "both": len(a & b),
                      "only_mlift": len(a - b), "only_datatrove": len(b - a), "data": str(data)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
