"""Cluster-balanced, quality-ranked selection with near-duplicate suppression (the default `select.method: cluster`).

Steps, all distance work in FAISS (exact inner product on L2-normalized vectors = cosine):
1. spherical k-means into ~sqrt(n) clusters, trained on a seeded subsample (`train_per_cluster` per cluster), then every
   candidate assigned to its nearest centroid; a cluster far above the mean size is split by a second k-means, so the
   within-cluster search below stays bounded;
2. within each cluster, candidates ranked by quality (ties: input order); each gets its redundancy: the highest cosine
   to a better-ranked candidate of its cluster (exact search, in blocks). Above `near_dup_cosine` it is a near-duplicate;
3. the `target` least redundant candidates are kept (near-duplicates only if the target cannot be met otherwise). This is
   a quality-ordered analogue of k-center's farthest-first: dense regions are thinned, sparse ones kept whole, and the
   best of each cluster always counts as novel. `fill: quality` keeps each cluster's count from this step but fills it
   with the cluster's best-quality non-duplicates (higher quality, slightly less spread).
Cost: k-means O(train * clusters * d * iters) + assignment O(n * clusters * d) + redundancy O(n * cluster size * d),
i.e. O(n^1.5 * d) with sqrt(n) clusters, in practice near-linear at these sizes (BLAS-bound). Memory: the embeddings
plus O(n) numbers.
Deterministic for a given seed and input order.
"""

from __future__ import annotations

import math

import numpy as np

from mlift.generate.config import SelectConfig

_BLOCK = 1024  # candidates compared at once in the near-duplicate search


def _faiss(threads: int | None):
    import faiss

    if threads:
        faiss.omp_set_num_threads(threads)
    return faiss


def _kmeans_labels(faiss, x: np.ndarray, k: int, cfg: SelectConfig, seed: int) -> np.ndarray:
    """Nearest-centroid label of each row of x after seeded spherical k-means with k clusters."""
    k = max(1, min(k, len(x)))
    if k == 1:
        return np.zeros(len(x), dtype=np.int64)
    km = faiss.Kmeans(x.shape[1], k, niter=cfg.kmeans_iters, seed=seed % (2**31 - 1), spherical=True,
                      max_points_per_centroid=cfg.train_per_cluster, min_points_per_centroid=1, verbose=False)
    km.train(x)  # FAISS draws the training subsample itself, with this seed
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(km.centroids)
    _, nearest = index.search(x, 1)
    return nearest[:, 0].astype(np.int64)


def cluster_labels(emb: np.ndarray, cfg: SelectConfig, seed: int) -> np.ndarray:
    """k-means labels, with oversized clusters split by a second, seeded k-means (labels renumbered 0..C-1)."""
    faiss = _faiss(cfg.threads)
    n = len(emb)
    k = cfg.clusters or max(1, round(cfg.clusters_per_sqrt * math.sqrt(n)))
    labels = _kmeans_labels(faiss, emb, k, cfg, seed)
    sizes = np.bincount(labels)
    mean = n / max(1, int((sizes > 0).sum()))
    nxt = int(labels.max()) + 1
    for c in np.flatnonzero(sizes > cfg.max_cluster_factor * mean):
        idx = np.flatnonzero(labels == c)
        sub = _kmeans_labels(faiss, np.ascontiguousarray(emb[idx]), math.ceil(len(idx) / mean), cfg, seed + 1 + int(c))
        moved = sub > 0  # sub-cluster 0 keeps the old label
        labels[idx[moved]] = nxt + sub[moved] - 1
        nxt += int(sub.max())
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def redundancy(emb: np.ndarray, order: np.ndarray, starts: np.ndarray, threads: int | None = None) -> np.ndarray:
    """For each candidate, its highest cosine to a candidate ahead of it in `order` within its cluster (clusters are
    the runs of `order` that begin at `starts`; -inf for a cluster's first). Exact, searched in blocks: a flat FAISS
    index of the cluster's earlier blocks plus the block's own Gram matrix, so memory stays O(block^2)."""
    faiss = _faiss(threads)
    d = emb.shape[1]
    out = np.full(len(emb), -np.inf, dtype=np.float32)
    bounds = np.r_[starts, len(order)]
    for s, e in zip(bounds[:-1], bounds[1:]):
        earlier = faiss.IndexFlatIP(d)
        for b in range(s, e, _BLOCK):
            idx = order[b:min(e, b + _BLOCK)]
            x = np.ascontiguousarray(emb[idx])
            best = np.full(len(idx), -np.inf, dtype=np.float32)
            if earlier.ntotal:
                best = earlier.search(x, 1)[0][:, 0]
            if len(idx) > 1:
                gram = x @ x.T
                gram[np.triu_indices(len(idx))] = -np.inf  # only candidates ahead in the order count
                best = np.maximum(best, gram.max(axis=1))
            out[idx] = best
            earlier.add(x)
    return out


def cluster_select(emb: np.ndarray, quality: np.ndarray, target: int, cfg: SelectConfig, seed: int,
                   info: dict | None = None) -> np.ndarray:
    """Sorted indices of `target` candidates (see the module docstring). `info`, if given, receives counts."""
    n = len(emb)
    if target >= n:
        return np.arange(n)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    idx = np.arange(n)
    labels = cluster_labels(emb, cfg, seed)
    order = np.lexsort((idx, -quality, labels))  # by cluster, then best quality, then input order
    starts = np.r_[0, np.flatnonzero(labels[order][1:] != labels[order][:-1]) + 1]
    red = redundancy(emb, order, starts, cfg.threads)
    dup = red > cfg.near_dup_cosine if cfg.near_dup_cosine is not None else np.zeros(n, dtype=bool)
    # the most novel candidates: least similar to a better one of their cluster (near-duplicates last)
    novel = np.lexsort((idx, -quality, red, dup))[:target]
    if cfg.fill == "novelty":
        chosen = novel
    else:  # each cluster keeps as many as above (density-aware quotas), but its best-quality non-duplicates
        quota = np.bincount(labels[novel], minlength=int(labels.max()) + 1)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = idx
        o = np.lexsort((rank, dup, labels))
        first = np.r_[0, np.flatnonzero(labels[o][1:] != labels[o][:-1]) + 1]
        pos = idx - np.repeat(first, np.diff(np.r_[first, n]))
        chosen = o[pos < quota[labels[o]]]
    if info is not None:
        info.update({"clusters": int(labels.max()) + 1, "near_duplicates": int(dup.sum()),
                     "near_duplicates_kept": int(dup[chosen].sum())})
    return np.sort(chosen)
