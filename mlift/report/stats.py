"""Intervals and paired tests over per-item scores (mlift.eval.item_scores), with seeds as a second level, and the verdict on a
published figure.

A cell is one arm's score on one column: per seed, per language, an (items x k) statistics array (k = 1 for mean
metrics). Its value is the mean over seeds of the mean over languages of the metric (what the table shows).
- Interval: a percentile bootstrap, two-level: each replicate draws the seeds with replacement and, per language, the
  items with replacement (the same items for every seed: the seeds of an arm are scored on the same documents).
- Arm vs baseline: the difference's interval by the same bootstrap with the items drawn once for both arms (paired).
  Its p-value, with one seed per arm: a paired permutation test (approximate randomisation: each item's two scores
  are swapped with probability 1/2), two-sided as scipy computes it, 2 x min(P(T* <= t), P(T* >= t)); with several
  seeds, where a permutation of items would ignore the spread between seeds: the two-level paired bootstrap's
  2 x min(P(D* <= 0), P(D* >= 0)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlift.eval.item_scores import corpus_score, kind

ALPHA = 0.05
Blocks = list[np.ndarray]  # per language: an (items x k) statistics array
Arm = list[Blocks]  # per seed


def _from_sums(metric: str, sums: np.ndarray, n: int) -> np.ndarray:
    """(B x k) statistics summed over n items (or weighted sums) -> B scores (0-100). Sums, not arrays of items, so a
    replicate costs a matrix product: resampling counts (or swap masks) times the items' statistics."""
    if kind(metric) == "mean":
        return 100.0 * sums[:, 0] / n
    return np.array([corpus_score(metric, row.tolist()) for row in sums])


def _score(metric: str, stats: np.ndarray) -> float:
    return float(_from_sums(metric, stats.sum(axis=0)[None], stats.shape[0])[0])


def point(metric: str, arm: Arm) -> float:
    return float(np.mean([np.mean([_score(metric, b) for b in blocks]) for blocks in arm]))


def _counts(idx: np.ndarray) -> np.ndarray:
    """(B x n) draws of item indices -> (B x n) how often each item was drawn."""
    counts = np.zeros(idx.shape)
    np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    return counts


def _replicates(metric: str, arms: list[Arm], iters: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per arm, `iters` bootstrap replicates of its value; the item draws are shared by all arms (paired), the seed
    draws are each arm's own."""
    n_langs = len(arms[0][0])
    per_arm_lang = [np.zeros((len(arm), iters)) for arm in arms]  # seed x replicate, summed over languages
    for lang in range(n_langs):
        n = arms[0][0][lang].shape[0]
        counts = _counts(rng.integers(0, n, size=(iters, n)))
        for a, arm in enumerate(arms):
            for s, blocks in enumerate(arm):
                per_arm_lang[a][s] += _from_sums(metric, counts @ blocks[lang], n)
    out = []
    for a, arm in enumerate(arms):
        values = per_arm_lang[a] / n_langs
        seeds = rng.integers(0, len(arm), size=(iters, len(arm))) if len(arm) > 1 else np.zeros((iters, 1), int)
        out.append(values[seeds, np.arange(iters)[:, None]].mean(axis=1))
    return out


def interval(metric: str, arm: Arm, iters: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the arm's value (items, and seeds when there are several)."""
    [reps] = _replicates(metric, [arm], iters, np.random.default_rng(seed))
    q = (1 - level) / 2
    return float(np.quantile(reps, q)), float(np.quantile(reps, 1 - q))


@dataclass
class Paired:
    delta: float
    ci: tuple[float, float]
    rel_pct: float | None  # (arm - baseline) / |baseline| x 100
    rel_ci: tuple[float, float] | None
    p: float

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def paired(metric: str, arm: Arm, base: Arm, iters: int = 1000, seed: int = 0, level: float = 0.95) -> Paired:
    """Arm vs baseline on the same items (blocks aligned item by item)."""
    rng = np.random.default_rng(seed)
    a_reps, b_reps = _replicates(metric, [arm, base], iters, rng)
    q = (1 - level) / 2
    d_reps = a_reps - b_reps
    a, b = point(metric, arm), point(metric, base)
    ci = (float(np.quantile(d_reps, q)), float(np.quantile(d_reps, 1 - q)))
    rel = rel_ci = None
    if b:
        rel = (a - b) / abs(b) * 100
        with np.errstate(divide="ignore", invalid="ignore"):
            r_reps = d_reps / np.abs(b_reps) * 100
        r_reps = r_reps[np.isfinite(r_reps)]
        rel_ci = (float(np.quantile(r_reps, q)), float(np.quantile(r_reps, 1 - q))) if r_reps.size else None
    if len(arm) > 1 or len(base) > 1:  # seeds vary too: the two-level bootstrap's own two-sided p
        p = float(min(1.0, 2 * min(np.sum(d_reps <= 0) + 1, np.sum(d_reps >= 0) + 1) / (iters + 1)))
    else:
        p = permutation_p(metric, arm[0], base[0], iters, rng)
    return Paired(a - b, ci, rel, rel_ci, p)


def permutation_p(metric: str, a: Blocks, b: Blocks, iters: int, rng: np.random.Generator) -> float:
    """Two-sided p of the paired permutation test of mean over languages of score(a) - score(b)."""
    observed = float(np.mean([_score(metric, x) - _score(metric, y) for x, y in zip(a, b)]))
    null = np.zeros(iters)
    for x, y in zip(a, b):
        n = x.shape[0]
        swap = (rng.random((iters, n)) < 0.5).astype(float)
        diff = y - x
        null += (_from_sums(metric, x.sum(axis=0) + swap @ diff, n)
                 - _from_sums(metric, y.sum(axis=0) - swap @ diff, n))
    null /= len(a)
    eps = 1e-12 * max(1.0, abs(observed))  # scipy's tolerance for ties with the observed value
    less = (np.sum(null <= observed + eps) + 1) / (iters + 1)
    greater = (np.sum(null >= observed - eps) + 1) / (iters + 1)
    return float(min(1.0, 2 * min(less, greater)))


# ---------------------------------------------------------------- verdicts on published figures

VERDICTS = ("reproduced", "same direction", "not reproduced", "inconclusive")


MIN_ITEMS = 10  # fewer items per language and a percentile bootstrap interval is too coarse to rule a figure out


def verdict(paper: float, ours: float | None, ci: tuple[float, float] | None, p: float | None,
            alpha: float = ALPHA, n_items: int | None = None) -> tuple[str, str]:
    """(verdict, why) for a published difference against ours (same unit: % or points).
    reproduced: ours significant, same sign, the paper's figure inside our interval; same direction: significant and
    same sign, the paper's figure outside it; not reproduced: significant with the other sign, or not significant with
    the paper's figure outside our interval (we can rule it out); inconclusive: not significant and the paper's figure
    inside our interval, or no interval (no per-item scores), or fewer than MIN_ITEMS items per language."""
    if ours is None or ci is None or p is None:
        return "inconclusive", "no per-item scores, so no interval or test"
    if n_items is not None and n_items < MIN_ITEMS:
        return "inconclusive", f"ours {ours:+.2f} (p={p:.3f}) from only {n_items} item(s) per language"
    inside = ci[0] <= paper <= ci[1]
    where = f"paper {paper:+.2f} {'inside' if inside else 'outside'} our 95% CI [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    if p < alpha:
        if (ours > 0) != (paper > 0):
            return "not reproduced", f"ours {ours:+.2f} is significant (p={p:.3f}) with the other sign; {where}"
        if inside:
            return "reproduced", f"ours {ours:+.2f}, p={p:.3f}; {where}"
        return "same direction", f"ours {ours:+.2f}, p={p:.3f}, same sign; {where}"
    if not inside:
        return "not reproduced", f"ours {ours:+.2f} not significant (p={p:.3f}); {where}"
    return "inconclusive", f"ours {ours:+.2f} not significant (p={p:.3f}); {where}"
