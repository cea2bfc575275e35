"""Scale benchmark of generation stage 1 (fragments + lang-ID + filters, then global exact/near dedup) and the
diversity selection, at N fragments (default 100k and 1M), each N in a fresh process for its own peak RSS.

Input: real UDHR lines (../shared/data/udhr, 10 languages' worth, French used here) repeated and perturbed (word
shuffles, dropped words, a counter) into a JSONL corpus that stage 1 streams through the real runner. Selection runs
the default cluster method (k = N/2) on precomputed small embeddings (seeded, dim 32) of N items; the 384-d selection
figures are in benchmarks/select_scale.py. Prints seconds, per-item cost and peak RSS.

    python benchmarks/generate_scale.py            # 100k and 1M
    python benchmarks/generate_scale.py 100000     # one size
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_corpus(path: Path, n: int, seed: int = 0) -> None:
    lines = [x.strip() for x in (REPO.parent / "shared/data/udhr/fra.txt").read_text(encoding="utf-8").split("\n")
             if len(x.split()) >= 12]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            words = rng.choice(lines).split()
            if rng.random() < 0.8:  # 20% stay (near-)duplicates of the source line
                k = rng.randrange(len(words))
                words = words[k:] + words[:k]
                words = [w for w in words if rng.random() > 0.1]
            fh.write(json.dumps({"id": str(i), "text": " ".join(words[:70]) + f" ({i})."}, ensure_ascii=False) + "\n")


def one(n: int) -> dict:
    import numpy as np

    from mlift.generate.config import GenerateRecipe, SelectConfig
    from mlift.generate.pipeline import Models, run_language
    from mlift.generate.select import select_indices
    from mlift.recipe import load_recipe

    tmp = Path(tempfile.mkdtemp(prefix="mlift-genbench-"))
    corpus = tmp / "corpus.jsonl"
    t0 = time.perf_counter()
    make_corpus(corpus, n)
    t_corpus = time.perf_counter() - t0
    base = {"output_dir": str(tmp / "out"), "num_shards": 8, "languages": ["fra_Latn"],
            "sources": [{"kind": "jsonl", "path": str(corpus), "id_field": "id"}],
            "fragments": {"min_tokens": 8, "max_tokens": 128},
            "translator": {"kind": "seq2seq", "model": "unused"}, "instruct": {"llm": {"backend": "transformers", "model": "unused"}}}
    cfg = load_recipe(None, GenerateRecipe, base=base).cfg
    models = Models(cfg)
    t0 = time.perf_counter()
    frag = run_language(cfg, "fra_Latn", models, only="fragments", progress=False, log=lambda s: None)["fragments"]
    t_frag = time.perf_counter() - t0
    t0 = time.perf_counter()
    dedup = run_language(cfg, "fra_Latn", models, only="dedup", progress=False, log=lambda s: None)["dedup"]
    t_dedup = time.perf_counter() - t0
    rss_stage1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, 32), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q = rng.random(n)
    t0 = time.perf_counter()
    picked = select_indices(emb, q, SelectConfig(target=n // 2), seed=0)  # the default (cluster) method
    t_sel = time.perf_counter() - t0
    return {"n": n, "corpus_s": round(t_corpus, 1), "fragments_s": round(t_frag, 1), "dedup_s": round(t_dedup, 1),
            "select_cluster_half_s": round(t_sel, 1), "fragments_kept": frag.counts["keep"],
            "fragment_drops": dict(frag.reasons["drop"]), "dedup_drops": dict(dedup.reasons["drop"]),
            "selected": len(picked), "us_per_fragment_stage1": round(1e6 * (t_frag + t_dedup) / n, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "rss_after_stage1_mb": round(rss_stage1)}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--one":
        print(json.dumps(one(int(argv[1]))))
        return 0
    sizes = [int(x) for x in argv] or [100_000, 1_000_000]
    for n in sizes:
        res = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, cwd=REPO,
                             env={"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        if res.returncode:
            print(res.stderr[-3000:])
            return res.returncode
        print(res.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
