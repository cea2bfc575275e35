"""Stage 4b (global): diversity-aware selection of the target number of pairs per language, over all score shards.

Instructions are embedded (sentence-transformers, or a seeded hashing embedder for tests/benchmarks), L2-normalized,
and selected by
- kcenter: greedy k-center on cosine distance, starting from the best-quality pair (each next pick is the pair
  farthest from everything picked so far), or
- cluster: seeded k-means, then round-robin over clusters taking each cluster's best-quality pair.
Pairs not picked are dropped as `not_selected` (diversity). Deterministic for a given seed and input order.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

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
    """Embeddings in chunks, so only the float32 matrix is held (not the texts)."""
    parts, buf = [], []
    for t in texts:
        buf.append(t)
        if len(buf) >= chunk:
            parts.append(embedder(buf))
            buf = []
    if buf:
        parts.append(embedder(buf))
    return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def kcenter(emb: np.ndarray, quality: np.ndarray, target: int) -> np.ndarray:
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


def kmeans(emb: np.ndarray, k: int, seed: int, iters: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = min(k, len(emb))
    centers = emb[rng.choice(len(emb), size=k, replace=False)].copy()
    labels = np.zeros(len(emb), dtype=np.int64)
    for _ in range(iters):
        labels = np.concatenate([np.argmax(emb[s:s + 65536] @ centers.T, axis=1) for s in range(0, len(emb), 65536)])
        for c in range(k):
            members = emb[labels == c]
            if len(members):
                v = members.mean(axis=0)
                centers[c] = v / (np.linalg.norm(v) or 1)
    return labels


def cluster_balanced(emb: np.ndarray, quality: np.ndarray, target: int, clusters: int, seed: int) -> np.ndarray:
    n = len(emb)
    if target >= n:
        return np.arange(n)
    labels = kmeans(emb, clusters, seed)
    queues = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        queues.append(list(idx[np.argsort(-quality[idx], kind="stable")]))
    picked: list[int] = []
    while len(picked) < target:
        for q in queues:
            if q and len(picked) < target:
                picked.append(int(q.pop(0)))
    return np.array(sorted(picked))


def select_indices(emb: np.ndarray, quality: np.ndarray, cfg: SelectConfig, seed: int) -> np.ndarray:
    if cfg.target is None or cfg.target >= len(emb):
        return np.arange(len(emb))
    if cfg.method == "kcenter":
        return kcenter(emb, quality, cfg.target)
    return cluster_balanced(emb, quality, cfg.target, cfg.clusters, seed)


def mean_pairwise_cosine(emb: np.ndarray) -> float | None:
    n = len(emb)
    if n < 2:
        return None
    s = emb.sum(axis=0)
    return float((s @ s - (emb * emb).sum()) / (n * (n - 1)))
