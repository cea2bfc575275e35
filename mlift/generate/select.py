"""Stage 4b (global): diversity-aware selection of the target number of pairs per language, over all score shards.

Instructions are embedded (sentence-transformers, or a seeded hashing embedder for tests/benchmarks), L2-normalized,
and selected by
- cluster (default): FAISS k-means into ~sqrt(n) clusters, quality-ranked within each, near-duplicates suppressed,
  round-robin by rank over clusters (mlift.generate.cluster_select; 1M -> 500k in minutes), or
- kcenter: greedy k-center on cosine distance, starting from the best-quality pair (each next pick is the pair
  farthest from everything picked so far); O(n * target) distance computations, for small runs only.
Pairs not picked are dropped as `not_selected` (diversity). Deterministic for a given seed and input order.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

from mlift.generate.cluster_select import cluster_select
from mlift.generate.config import EmbedderConfig, SelectConfig


class Embedder:
    def __init__(self, cfg: EmbedderConfig, seed: int = 0):
        self.cfg = cfg
        self.model = None
        if cfg.kind == "sentence_transformers":
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(cfg.model, device=cfg.device)
        self.name = f"{cfg.kind}:{cfg.model if self.model is not None else cfg.dim}"

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.model is not None:
            vecs = self.model.encode(texts, batch_size=self.cfg.batch_size, convert_to_numpy=True, show_progress_bar=False)
            vecs = vecs.astype(np.float32)
        else:
            vecs = np.zeros((len(texts), self.cfg.dim), dtype=np.float32)
            for i, t in enumerate(texts):  # character 3-gram + word hashing ("feature hashing"), stable across runs
                t = " ".join(t.lower().split())
                feats = [t[k:k + 3] for k in range(max(1, len(t) - 2))] + t.split()
                for f in feats:
                    h = zlib.crc32(f.encode())
                    vecs[i, h % self.cfg.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms == 0, 1, norms)


def embed_all(embedder: Embedder, texts: Iterable[str], chunk: int = 4096) -> np.ndarray:
    """Embeddings in chunks, so only the float32 matrix is held (not the texts). The matrix grows in place
    (ndarray.resize: realloc, which moves large blocks by remapping pages), so the peak is about one matrix, not
    the two that concatenating the chunks at the end needs."""
    out: np.ndarray | None = None
    n, buf = 0, []

    def add(vecs: np.ndarray) -> None:
        nonlocal out, n
        if out is None:
            out = np.empty((max(len(vecs), chunk), vecs.shape[1]), dtype=np.float32)
        if n + len(vecs) > len(out):
            out.resize((max(n + len(vecs), int(len(out) * 1.5)), out.shape[1]), refcheck=False)
        out[n:n + len(vecs)] = vecs
        n += len(vecs)

    for t in texts:
        buf.append(t)
        if len(buf) >= chunk:
            add(embedder(buf))
            buf = []
    if buf:
        add(embedder(buf))
    if out is None:
        return np.zeros((0, 1), dtype=np.float32)
    out.resize((n, out.shape[1]), refcheck=False)
    return out


def kcenter(emb: np.ndarray, quality: np.ndarray, target: int) -> np.ndarray:
    """Greedy k-center (farthest-first traversal) from the best-quality candidate: O(n * target) time."""
    n = len(emb)
    if target >= n:
        return np.arange(n)
    first = int(np.argmax(quality))  # ties: the earliest
    picked = [first]
    mind = 1.0 - emb @ emb[first]
    mind[first] = -np.inf
    for _ in range(target - 1):
        nxt = int(np.argmax(mind))
        picked.append(nxt)
        np.minimum(mind, 1.0 - emb @ emb[nxt], out=mind)
        mind[nxt] = -np.inf
    return np.array(sorted(picked))


def select_indices(emb: np.ndarray, quality: np.ndarray, cfg: SelectConfig, seed: int,
                   info: dict | None = None) -> np.ndarray:
    """Sorted indices of the cfg.target candidates to keep (all when target is None or >= the candidates)."""
    if cfg.target is None or cfg.target >= len(emb):
        return np.arange(len(emb))
    if cfg.method == "kcenter":
        return kcenter(emb, quality, cfg.target)
    return cluster_select(emb, quality, cfg.target, cfg, seed, info)


def mean_pairwise_cosine(emb: np.ndarray) -> float | None:
    n = len(emb)
    if n < 2:
        return None
    s = emb.sum(axis=0)
    return float((s @ s - (emb * emb).sum()) / (n * (n - 1)))
