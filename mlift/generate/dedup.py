"""Exact and near-duplicate removal across all fragment shards (a global step; see mlift.generate.plan).

Exact: NFKC-lowercased, whitespace-collapsed text. Near: MinHash over character n-grams (script-agnostic, works for
CJK without a segmenter) with LSH banding. Vectorized numpy (seeded permutations, a fixed polynomial shingle hash) so
1M fragments fit in well under 2 GB: only the signatures are held (num_perm x 4 bytes per fragment), never the text.
Rule: within each LSH bucket the first fragment (in shard order) stays; a later one whose estimated Jaccard with it
is >= threshold is dropped as `near_duplicate` of it. Deterministic for a given seed and input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from mlift.data.text import normalize
from mlift.generate.config import DedupConfig
from mlift.records import Record

_MASK32 = np.uint64(0xFFFFFFFF)


def shingle_hashes(text: str, n: int) -> np.ndarray:
    """uint64 hashes of the character n-grams of `text` (a polynomial rolling hash: stable across processes)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cps) < n:
        cps = np.pad(cps, (0, n - len(cps)))
    h = np.zeros(len(cps) - n + 1, dtype=np.uint64)
    for k in range(n):  # wraps mod 2^64 on purpose
        h = h * np.uint64(1_000_003) + cps[k:len(cps) - n + 1 + k]
    return np.unique(h & _MASK32)


class MinHasher:
    def __init__(self, num_perm: int, ngram: int, seed: int):
        rng = np.random.default_rng(seed)
        # multiply-shift universal hashing on 64-bit words (wraps mod 2^64; no slow modulo): h -> (a*h + b) >> 32
        self.a = rng.integers(1, 1 << 63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
        self.ngram = ngram

    def __call__(self, text: str) -> np.ndarray:
        h = shingle_hashes(text, self.ngram)
        return ((h[:, None] * self.a[None, :] + self.b[None, :]) >> np.uint64(32)).min(axis=0).astype(np.uint32)


def plan_dedup(records: Iterable[Record], cfg: DedupConfig, seed: int, field: str = "fragment") -> dict:
    drop: dict[str, list[str]] = {}
    seen: dict[bytes, str] = {}
    hasher = MinHasher(cfg.num_perm, cfg.ngram, seed)
    ids: list[str] = []
    chunks: list[np.ndarray] = []
    buf: list[np.ndarray] = []
    total = 0
    for rec in records:
        total += 1
        norm = normalize(rec[field])
        if cfg.exact:
            key = hashlib.blake2b(norm.encode(), digest_size=16).digest()
            if key in seen:
                drop[rec.id] = ["exact_duplicate", f"same text as {seen[key]}"]
                continue
            seen[key] = rec.id
        if cfg.near:
            ids.append(rec.id)
            buf.append(hasher(norm))
            if len(buf) >= 65536:
                chunks.append(np.stack(buf))
                buf = []
    del seen
    if buf:
        chunks.append(np.stack(buf))
    near = 0
    if cfg.near and ids:
        sig = np.concatenate(chunks)
        del chunks
        near_of = near_duplicates(sig, cfg.bands, cfg.threshold)
        for i, j in near_of.items():
            drop[ids[i]] = ["near_duplicate", f"~{cfg.threshold:.2f}+ Jaccard with {ids[j]}"]
            near += 1
    return {"drop": drop, "info": {"records": total, "exact": sum(1 for v in drop.values() if v[0] == "exact_duplicate"),
                                   "near": near}}


def near_duplicates(sig: np.ndarray, bands: int, threshold: float) -> dict[int, int]:
    """index -> index of the earlier fragment it nearly duplicates."""
    n, num_perm = sig.shape
    if num_perm % bands:
        raise ValueError(f"dedup: num_perm {num_perm} is not a multiple of bands {bands}")
    rows = num_perm // bands
    out: dict[int, int] = {}
    for b in range(bands):
        band = np.ascontiguousarray(sig[:, b * rows:(b + 1) * rows])
        keys = band.view(np.dtype((np.void, band.dtype.itemsize * rows))).ravel()
        order = np.argsort(keys, kind="stable")  # equal keys stay in input order: the first is the earliest
        sk = keys[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for s, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            first = order[s]
            members = order[s + 1:s + size]
            est = (sig[members] == sig[first]).mean(axis=1)
            for m in members[est >= threshold]:
                out.setdefault(int(m), int(first))
    return out
