"""Diversity selection (stage 4b): the default FAISS cluster method and the k-center method, on 384-d embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from mlift.generate.config import SelectConfig
from mlift.generate.select import mean_pairwise_cosine, select_indices

DIM = 384


def clustered(n: int, topics: int = 30, seed: int = 0, dups: int = 0):
    """Unit vectors in Zipf-sized topics around a shared direction (like sentence embeddings), a random quality, and
    `dups` planted near-copies (cosine ~0.99) of earlier vectors; returns (emb, quality, labels, pairs)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(DIM)
    centres = 0.5 * g / np.linalg.norm(g) + rng.standard_normal((topics, DIM)) / np.sqrt(DIM)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    p = 1.0 / np.arange(1, topics + 1)
    labels = rng.choice(topics, size=n, p=p / p.sum())
    emb = centres[labels] + rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    pairs = []
    for i in rng.choice(np.arange(n // 2, n), size=dups, replace=False):
        j = int(rng.integers(0, n // 2))
        emb[i] = emb[j] + 0.1 * rng.standard_normal(DIM) / np.sqrt(DIM)
        labels[i] = labels[j]
        pairs.append((j, int(i)))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), rng.random(n), labels, pairs


def test_default_is_cluster_and_keeps_half_of_384d():
    emb, q, _, _ = clustered(3000)
    cfg = SelectConfig(target=1500)
    assert cfg.method == "cluster"
    info: dict = {}
    keep = select_indices(emb, q, cfg, seed=0, info=info)
    assert len(keep) == 1500 and len(np.unique(keep)) == 1500 and (np.diff(keep) > 0).all()
    assert info["clusters"] == round(cfg.clusters_per_sqrt * np.sqrt(3000))


@pytest.mark.parametrize("method", ["cluster", "kcenter"])
def test_same_seed_same_selection(method):
    emb, q, _, _ = clustered(2000, seed=1)
    cfg = SelectConfig(target=700, method=method)
    a = select_indices(emb, q, cfg, seed=5)
    assert (a == select_indices(emb, q, cfg, seed=5)).all()
    if method == "cluster":  # FAISS threads do not change the result
        assert (a == select_indices(emb, q, SelectConfig(target=700, threads=1), seed=5)).all()
        assert (a == select_indices(emb, q, SelectConfig(target=700, threads=2), seed=5)).all()
        assert not (a == select_indices(emb, q, cfg, seed=6)).all()  # the seed is used (k-means)


def test_better_quality_than_random_and_more_diverse():
    emb, q, _, _ = clustered(4000, seed=2)
    rng = np.random.default_rng(0)
    rand = rng.choice(len(emb), size=2000, replace=False)
    novelty = select_indices(emb, q, SelectConfig(target=2000), seed=0)
    best = select_indices(emb, q, SelectConfig(target=2000, fill="quality"), seed=0)
    assert q[novelty].mean() > q[rand].mean() + 0.03
    assert q[best].mean() > q[novelty].mean() + 0.05
    for sel in (novelty, best):
        assert mean_pairwise_cosine(emb[sel]) < mean_pairwise_cosine(emb[rand]) - 0.003


def test_near_duplicates_suppressed():
    emb, q, _, pairs = clustered(3000, seed=3, dups=300)

    def both_kept(keep):
        s = set(keep.tolist())
        return sum(a in s and b in s for a, b in pairs)

    keep = select_indices(emb, q, SelectConfig(target=1500), seed=0)
    assert both_kept(keep) == 0
    sims = emb[keep] @ emb[keep].T
    np.fill_diagonal(sims, 0)
    assert sims.max() < 0.95
    # the same with suppression off keeps planted pairs: the check above can fail
    assert both_kept(select_indices(emb, q, SelectConfig(target=1500, near_dup_cosine=None, fill="quality"), seed=0)) > 20


def test_near_duplicates_fill_when_too_few_distinct():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((50, DIM)).astype(np.float32)
    emb = np.repeat(base, 4, axis=0)  # 200 candidates, 50 distinct
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q = rng.random(200)
    info: dict = {}
    keep = select_indices(emb, q, SelectConfig(target=80, clusters=5), seed=0, info=info)
    assert len(keep) == 80
    assert info["near_duplicates"] == 150 and info["near_duplicates_kept"] == 30
    distinct = {tuple(np.round(v, 4)) for v in emb[keep]}
    assert len(distinct) == 50  # every distinct vector first, copies only to reach the target


def test_kcenter_picks_farthest_first_from_the_best_quality():
    """Unit vectors at known angles (a random rotation of a circle into 384 dimensions: cosines kept), through the
    recipe's selection entry (a `select:` section -> select_indices). Worked by hand (cosine distance falls with the
    angle between two points, so "farthest" = "largest angle"):
    start at the best quality, 90 deg; the farthest from it is 275 (185 -> 175 deg); the nearest picked point of 180
    is 90 deg away, of 0 85, of 10 80, of 200 75: 180 next; then 0 (85, vs 80 for 10 and 20 for 200); then 200 (20
    from 180, vs 10 for 10 from 0); 10 last."""
    angles = np.array([0, 10, 90, 180, 200, 275], dtype=np.float64)
    quality = np.array([0.1, 0.2, 0.9, 0.3, 0.4, 0.5])
    circle = np.stack([np.cos(np.radians(angles)), np.sin(np.radians(angles))], axis=1)
    rotation, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((DIM, 2)))
    emb = (circle @ rotation.T).astype(np.float32)
    assert np.allclose(emb @ emb.T, circle @ circle.T, atol=1e-5)
    expect = {1: [2], 2: [2, 5], 3: [2, 3, 5], 4: [0, 2, 3, 5], 5: [0, 2, 3, 4, 5], 6: [0, 1, 2, 3, 4, 5]}
    for target, keep in expect.items():
        cfg = SelectConfig.model_validate({"target": target, "method": "kcenter"})
        assert select_indices(emb, quality, cfg, seed=0).tolist() == keep, target
    # the best quality moves to 0 deg: 0, then 180 (the farthest), then 90 (90 from both, vs 85 for 275, 20 for 200)
    moved = np.array([0.9, 0.2, 0.1, 0.3, 0.4, 0.5])
    assert select_indices(emb, moved, SelectConfig(target=3, method="kcenter"), seed=0).tolist() == [0, 2, 3]


def test_oversized_cluster_is_split():
    from mlift.generate.cluster_select import cluster_labels

    emb, _, _, _ = clustered(2000, topics=3, seed=6)
    whole = np.bincount(cluster_labels(emb, SelectConfig(target=10, clusters=2), seed=0))
    assert len(whole) == 2 and whole.max() > 1000
    split = np.bincount(cluster_labels(emb, SelectConfig(target=10, clusters=2, max_cluster_factor=1.0), seed=0))
    assert len(split) > 2 and split.max() < whole.max() and split.sum() == 2000


def test_embed_all_grows_one_matrix_in_chunks_equal_to_embedding_at_once():
    from mlift.generate.config import EmbedderConfig
    from mlift.generate.select import Embedder, embed_all

    emb = Embedder(EmbedderConfig(kind="hashing", dim=64))
    texts = [f"instruction number {i} about topic {i % 7}" for i in range(1000)]
    got = embed_all(emb, iter(texts), chunk=64)  # 16 chunks, several resizes
    assert got.shape == (1000, 64) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, emb(texts))
    assert embed_all(emb, iter([])).shape == (0, 1)
