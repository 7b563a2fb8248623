"""The run report's charts: matplotlib figures as PNG data URIs, for a self-contained page.

Each function takes the figures' data (TFDV feature statistics, TensorBoard series, slice
metrics) and returns `data:image/png;base64,...`; pipeline/report.py places them.
"""
from __future__ import annotations

import base64
import io
from typing import Any, Dict, List, Optional, Sequence, Tuple

from matplotlib.figure import Figure

# The most frequent values charted for a string feature.
TOP_VALUES_SHOWN = 10
SPLIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def png(fig: Figure) -> str:
    """The figure as a data: URI (PNG), for an <img> in a self-contained page."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float, height: float, columns: int = 1) -> Tuple[Figure, List[Any]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, columns, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3)
    return fig, list(axes)


def _numeric_histogram(num_stats) -> List[Tuple[float, float, float]]:
    for histogram in num_stats.histograms:
        if histogram.type == histogram.STANDARD:
            return [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
    return []


def top_values_chart(name: str, by_split: Dict[str, Any]) -> str:
    """Share of each of the most frequent values, one bar per split."""
    totals = {split: max(feature.string_stats.common_stats.num_non_missing, 1)
              for split, feature in by_split.items()}
    frequency: Dict[str, Dict[str, float]] = {}
    for split, feature in by_split.items():
        for value in feature.string_stats.top_values:
            frequency.setdefault(value.value, {})[split] = value.frequency
    values = sorted(frequency, key=lambda v: -sum(frequency[v].values()))[:TOP_VALUES_SHOWN]
    fig, (ax,) = new_figure(6.4, 0.45 * len(values) * len(by_split) ** 0.5 + 1.1)
    height = 0.8 / len(by_split)
    for index, split in enumerate(by_split):
        ax.barh([position + index * height for position in range(len(values))],
                [100.0 * frequency[value].get(split, 0) / totals[split] for value in values],
                height=height, label=split, color=SPLIT_COLORS[index % len(SPLIT_COLORS)])
    ax.set_yticks([position + 0.4 - height / 2 for position in range(len(values))],
                  [value if len(value) <= 40 else value[:37] + "..." for value in values])
    ax.invert_yaxis()
    ax.set_xlabel("% of examples")
    ax.set_title(f"{name}: most frequent values", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return png(fig)


def numeric_chart(name: str, by_split: Dict[str, Any]) -> Optional[str]:
    fig, (ax,) = new_figure(6.4, 2.6)
    drawn = False
    for index, (split, feature) in enumerate(by_split.items()):
        buckets = _numeric_histogram(feature.num_stats)
        total = sum(count for _, _, count in buckets) or 1
        if buckets:
            ax.stairs([100.0 * count / total for _, _, count in buckets],
                      [buckets[0][0]] + [high for _, high, _ in buckets], label=split,
                      color=SPLIT_COLORS[index % len(SPLIT_COLORS)], linewidth=1.8)
            drawn = True
    if not drawn:
        return None
    ax.set_ylabel("% of values")
    ax.set_title(f"{name}: histogram", fontsize=10)
    ax.legend(fontsize=8)
    return png(fig)


def token_length_chart(text_feature: str, token_stats, max_seq_length: Optional[int]) -> str:
    """Cumulative share of texts by WordPiece tokens per text (Transform's quantiles)."""
    buckets = token_stats.num_stats.common_stats.num_values_histogram.buckets
    total = sum(bucket.sample_count for bucket in buckets) or 1
    lengths, shares, seen = [buckets[0].low_value], [0.0], 0.0
    for bucket in buckets:
        seen += bucket.sample_count
        lengths.append(bucket.high_value)
        shares.append(100.0 * seen / total)
    fig, (ax,) = new_figure(6.4, 2.6)
    ax.plot(lengths, shares, marker="o", markersize=3, color=SPLIT_COLORS[0], label="train")
    if max_seq_length:
        ax.axvline(max_seq_length, color="#d62728", linestyle="--",
                   label=f"max_seq_length {max_seq_length}")
    ax.set_xlabel("tokens per text, [CLS] and [SEP] included")
    ax.set_ylabel("% of texts (cumulative)")
    ax.set_title(f"{text_feature}: tokens per text after Transform", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def training_curves_chart(metrics: Sequence[str], train: Dict[str, List[Tuple[int, float]]],
                          validation: Dict[str, List[Tuple[int, float]]]) -> str:
    """One panel per metric: train and validation, per step when Keras logged batches (a running
    mean within each epoch), else per epoch."""
    fig, axes = new_figure(4.2 * len(metrics), 3.0, columns=len(metrics))
    for ax, metric in zip(axes, metrics):
        steps_train = train.get(f"batch_{metric}")
        steps_validation = validation.get(f"evaluation_{metric}_vs_iterations")
        if steps_train:
            ax.plot(*zip(*steps_train), label="train (running mean in epoch)", linewidth=1.4)
            if steps_validation:
                ax.plot(*zip(*steps_validation), marker="o", label="validation", linewidth=1.4)
            ax.set_xlabel("step")
        else:
            ax.plot(*zip(*train[f"epoch_{metric}"]), marker="o", label="train")
            if f"epoch_{metric}" in validation:
                ax.plot(*zip(*validation[f"epoch_{metric}"]), marker="o", label="validation")
            ax.set_xlabel("epoch")
        ax.set_title(metric, fontsize=10)
        ax.legend(fontsize=8)
    return png(fig)


def slice_chart(names: Sequence[str], accuracies: Sequence[float],
                counts: Sequence[Optional[float]], accuracy_name: str) -> str:
    """Accuracy per slice as horizontal bars, each labelled with its example count."""
    fig, (ax,) = new_figure(5.6, 0.34 * len(names) + 0.9)
    bars = ax.barh(range(len(names)), accuracies, color=SPLIT_COLORS[0])
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel(accuracy_name)
    for bar, accuracy, count in zip(bars, accuracies, counts):
        label = f"{accuracy:.3f}" + (f"  (n={count:.0f})" if count is not None else "")
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, label,
                va="center", fontsize=8)
    ax.set_title(f"{accuracy_name} by slice", fontsize=10)
    return png(fig)
