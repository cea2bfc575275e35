"""Intervals and paired tests against scipy on real per-item scores, and the verdict on published figures.

The scores are real: FLORES-200 devtest French references scored (mlift.eval.item_scores, i.e. sacrebleu / the XL-Sum ROUGE
scorer) against two "systems" that are real text, the Spanish and the German lines of the same sentences:
their per-item chrF++ statistics and ROUGE-L differ item by item the way two models' outputs do."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path
from scipy import stats

from mlift.eval.item_scores import corpus_score, corpus_stats, rouge_per_item
from mlift.report.stats import interval, paired, verdict

N = 60


def lines(code: str) -> list[str]:
    return shared_path("data", "flores200", "devtest", f"{code}.devtest").read_text(encoding="utf-8").splitlines()[:N]


@pytest.fixture(scope="module")
def real():
    ref, spa, deu = lines("fra_Latn"), lines("spa_Latn"), lines("deu_Latn")
    rouge = {name: np.array(rouge_per_item("rougeL", sys, ref, "fra_Latn", "xlsum"))[:, None]
             for name, sys in (("spa", spa), ("deu", deu))}
    chrf = {name: np.array(corpus_stats("chrf++", ref, sys)) for name, sys in (("spa", spa), ("deu", deu))}
    return rouge, chrf


def test_interval_matches_scipy_bootstrap_on_real_rouge_and_chrf(real):
    rouge, chrf = real
    x = rouge["spa"][:, 0]
    ours = interval("rougeL", [[rouge["spa"]]], iters=4000, seed=1)
    ref = stats.bootstrap((100 * x,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2))
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert width > 1  # a real spread, not a degenerate case
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.08 * width)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.08 * width)
    # chrF++ is a corpus metric: the statistic of a resample is the corpus score of its summed sentence statistics
    s = chrf["spa"]
    ours = interval("chrf++", [[s]], iters=1000, seed=1)
    ref = stats.bootstrap((np.arange(N),), lambda i: corpus_score("chrf++", s[i.astype(int)].sum(0).tolist()),
                          n_resamples=1000, method="percentile", vectorized=False, rng=np.random.default_rng(2))
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.1 * width)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.1 * width)


def test_paired_test_matches_scipy_permutation_test_on_real_scores(real):
    rouge, chrf = real
    x, y = 100 * rouge["spa"][:, 0], 100 * rouge["deu"][:, 0]
    ours = paired("rougeL", [[rouge["spa"]]], [[rouge["deu"]]], iters=4000, seed=3)
    ref = stats.permutation_test((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                                 permutation_type="samples", n_resamples=4000, vectorized=True,
                                 rng=np.random.default_rng(4))
    assert ours.delta == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue, abs=0.02)
    # a close pair (first 30 vs last 30 of the same system's items) gives a p well away from 0
    a, b = rouge["spa"][:30], rouge["spa"][30:]
    ours = paired("rougeL", [[a]], [[b]], iters=4000, seed=3)
    ref = stats.permutation_test((100 * a[:, 0], 100 * b[:, 0]), lambda u, v, axis: np.mean(u, axis) - np.mean(v, axis),
                                 permutation_type="samples", n_resamples=4000, rng=np.random.default_rng(4))
    assert 0.05 < ref.pvalue and ours.p == pytest.approx(ref.pvalue, abs=0.03)
    # chrF++: swapping an item's statistics between the systems, the corpus scores recomputed
    s, t = chrf["spa"], chrf["deu"]
    both = np.concatenate([s, t])
    ours = paired("chrf++", [[s]], [[t]], iters=1000, seed=3)
    ref = stats.permutation_test(
        (np.arange(N), np.arange(N) + N),
        lambda i, j: corpus_score("chrf++", both[i].sum(0).tolist()) - corpus_score("chrf++", both[j].sum(0).tolist()),
        permutation_type="samples", n_resamples=1000, vectorized=False, rng=np.random.default_rng(4))
    assert ours.delta == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue, abs=0.03)


def test_seeds_are_a_second_level(real):
    rouge, _ = real
    one = interval("rougeL", [[rouge["spa"]]], iters=2000, seed=5)
    # three seeds that disagree widely: the interval must widen beyond the item-only one
    shifted = [[np.clip(rouge["spa"] + d, 0, 1)] for d in (-0.15, 0.0, 0.15)]
    three = interval("rougeL", shifted, iters=2000, seed=5)
    assert three[1] - three[0] > 1.5 * (one[1] - one[0])
    # identical seeds add nothing
    same = interval("rougeL", [[rouge["spa"]]] * 3, iters=2000, seed=5)
    assert same[1] - same[0] == pytest.approx(one[1] - one[0], rel=0.15)


@pytest.mark.parametrize(("paper", "ours", "ci", "p", "expect"), [
    (17.6, 15.0, (5.0, 25.0), 0.01, "reproduced"),
    (17.6, 3.0, (1.0, 5.0), 0.01, "same direction"),
    (17.6, -10.0, (-15.0, -5.0), 0.001, "not reproduced"),
    (17.6, 1.0, (-4.0, 6.0), 0.6, "not reproduced"),  # not significant, and the paper's +17.6 is ruled out
    (17.6, 5.0, (-10.0, 20.0), 0.4, "inconclusive"),
    (17.6, None, None, None, "inconclusive"),
])
def test_verdicts(paper, ours, ci, p, expect):
    assert verdict(paper, ours, ci, p)[0] == expect
    # two items per language cannot rule anything in or out, whatever the interval says
    assert verdict(paper, ours, ci, p, n_items=2)[0] == "inconclusive"
    assert verdict(paper, ours, ci, p, n_items=40)[0] == expect
