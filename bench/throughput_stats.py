"""The statistics of bench/training_throughput.py: examples/s per timed window, and the
accuracy difference from the padded recipe paired by seed, with its 95% confidence interval
and the verdict that interval gives against the ±1-point equivalence margin.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from throughput_data import BATCH_SIZE
from throughput_variants import Variant

# Two variants' accuracies count as equal when the 95% confidence interval of their paired
# difference lies within ±1 point: about 9 of the 872 test sentences (one variant's accuracy
# alone ranged over 1.2-1.8 points across six seeds).
EQUIVALENCE_MARGIN = 0.01


def examples_per_second(variant: Variant) -> List[float]:
    return [variant.window_steps * BATCH_SIZE / seconds for seconds in variant.seconds]


def paired_difference(variant: Variant, baseline: Variant) -> Optional[Dict[str, float]]:
    """Mean of variant - baseline over the seeds both ran, with a 95% t confidence interval
    (the seed changes both runs alike: initial head weights, dropout and shuffle order)."""
    from scipy import stats
    seeds = sorted(set(variant.accuracies) & set(baseline.accuracies))
    if not seeds:
        return None
    differences = np.array([variant.accuracies[seed] - baseline.accuracies[seed]
                            for seed in seeds])
    mean = float(differences.mean())
    half = (float(stats.t.ppf(0.975, len(seeds) - 1) * differences.std(ddof=1)
                  / np.sqrt(len(seeds))) if len(seeds) > 1 else float("nan"))
    return dict(mean=mean, low=mean - half, high=mean + half, seeds=len(seeds),
                not_worse=int(np.sum(differences >= 0)))


def verdict(difference: Dict[str, float]) -> str:
    """better / equal / worse than the baseline, from the paired difference's 95% CI."""
    low, high = difference["low"], difference["high"]
    if np.isnan(low):
        return "one seed: no interval"
    if low > 0:
        return "better"
    if -EQUIVALENCE_MARGIN <= low and high <= EQUIVALENCE_MARGIN:
        return (f"lower, by less than {100 * EQUIVALENCE_MARGIN:g} point" if high < 0 else
                f"equal (CI within ±{100 * EQUIVALENCE_MARGIN:g} point)")
    if high < 0:
        return "worse"
    return "inconclusive: CI wider than the margin"
