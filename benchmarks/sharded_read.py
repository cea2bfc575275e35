"""Bytes read by n input shards over one big JSONL corpus: mlift's byte-range shards (each shard a subprocess reading
through mlift.data.corpus.iter_documents) vs the previous rule (every shard reads everything, keeps every n-th).

Bytes read = rchar of /proc/self/io (all read() calls of the process, including Python's imports: measured as the
difference around the read). The corpus is generated in a temp folder and deleted afterwards.
Run: python benchmarks/sharded_read.py [--gb 1.0] [--shards 8]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from mlift.data.corpus import SourceConfig
from mlift.data.corpus import iter_documents
from mlift.records import BadLine

def rchar():
    for line in open("/proc/self/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])

path, j, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
src = SourceConfig(kind="jsonl", path=path, id_field="id")
r0, t0 = rchar(), time.perf_counter()
docs = 0
if mode == "ours":
    docs = sum(1 for d in iter_documents([src], "en", (j, n)) if not isinstance(d, BadLine))
else:  # the previous rule: read every document, keep every n-th
    docs = sum(1 for i, d in enumerate(iter_documents([src], "en", (0, 1))) if i % n == j)
print(json.dumps({"bytes": rchar() - r0, "docs": docs, "seconds": time.perf_counter() - t0}))
"""


def make_corpus(path: Path, gb: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    words = [f"w{k}" for k in range(5000)]
    pool = [json.dumps(" ".join(rng.choices(words, k=rng.randint(50, 400)))) for _ in range(4000)]
    target, written, i = int(gb * 1e9), 0, 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            block = "".join(f'{{"id": {i + k}, "text": {pool[(i + k) * 7919 % len(pool)]}}}\n' for k in range(1000))
            fh.write(block)
            written += len(block.encode())
            i += 1000
    return i


def run(path: Path, n: int, mode: str, shards: list[int]) -> list[dict]:
    out = []
    for j in shards:
        res = subprocess.run([sys.executable, "-c", CHILD, str(path), str(j), str(n), mode], capture_output=True,
                             text=True, check=True)
        out.append(json.loads(res.stdout))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--old-shards", type=int, default=1, help="shards of the previous rule to measure (each reads all)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlift-shardread-"))
    try:
        corpus = tmp / "corpus.jsonl"
        t0 = time.perf_counter()
        n_docs = make_corpus(corpus, args.gb)
        size = corpus.stat().st_size
        print(f"corpus: {size / 1e9:.3f} GB, {n_docs} documents (made in {time.perf_counter() - t0:.0f} s)")
        ours = run(corpus, args.shards, "ours", list(range(args.shards)))
        total = sum(r["bytes"] for r in ours)
        assert sum(r["docs"] for r in ours) == n_docs, "the shards do not cover the corpus exactly once"
        for j, r in enumerate(ours):
            print(f"  shard {j}: {r['bytes'] / 1e6:.1f} MB read, {r['docs']} docs, {r['seconds']:.1f} s")
        print(f"byte-range shards: {args.shards} shards read {total / 1e9:.3f} GB = {total / size:.3f}x the corpus "
              f"(target <= 1.1x); docs {sum(r['docs'] for r in ours)} = corpus {n_docs}")
        old = run(corpus, args.shards, "old", list(range(args.old_shards)))
        per = sum(r["bytes"] for r in old) / len(old)
        print(f"previous rule (every shard reads all, keeps every {args.shards}-th): {per / 1e9:.3f} GB per shard "
              f"(measured on {len(old)} shard(s)) -> {args.shards * per / size:.2f}x the corpus for {args.shards} shards")
        print(f"time: byte-range shards {sum(r['seconds'] for r in ours):.0f} s in all vs previous rule "
              f"{args.shards * sum(r['seconds'] for r in old) / len(old):.0f} s in all (extrapolated; contended 2-core machine)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
