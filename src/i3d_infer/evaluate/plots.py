"""The evaluation's figures, as PNG bytes (written beside the results and inlined in ``report.html``).

Each names what it shows: per-class accuracy sorted with the class names (all when there are few, the best and
worst twenty otherwise), the confusion matrix for a small class set and the most frequent confusions for a large
one, and the top-1 probability of correct and wrong predictions (calibration at a glance).
"""

from __future__ import annotations

import io

import numpy as np

MATRIX_MAX_CLASSES = 30  # a confusion matrix above this many classes is one colour at any readable size
NAMED = 20  # per-class plot of many classes: the best and the worst this many


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=100)


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def per_class_accuracy(names: list[str], accuracy: np.ndarray) -> bytes:
    """Horizontal bars of top-1 accuracy per class present, best first; the best and worst ``NAMED`` of many."""
    order = np.argsort(-accuracy, kind="stable")
    shown = order if len(order) <= 2 * NAMED else np.concatenate([order[:NAMED], order[-NAMED:]])
    plt, fig, ax = _figure(8, max(2.5, 0.22 * len(shown) + 1))
    y = np.arange(len(shown))
    ax.barh(y, accuracy[shown], color=["#3a7" if accuracy[i] >= 0.5 else "#c54" for i in shown])
    for k, i in enumerate(shown):  # the value beside each bar: a class at 0 is still visibly there
        ax.text(min(accuracy[i], 0.9) + 0.01, k, f"{100 * accuracy[i]:.0f}%", va="center", fontsize=7)
    ax.set_yticks(y, [names[i] for i in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy")
    title = f"Per-class top-1 accuracy ({len(order)} classes"
    ax.set_title(title + (")" if len(shown) == len(order) else f"; best and worst {NAMED})"))
    if len(shown) < len(order):
        ax.axhline(NAMED - 0.5, color="grey", linestyle="--", linewidth=0.8)
    return _png(plt, fig)


def confusion_matrix(names: list[str], matrix: np.ndarray) -> bytes:
    """Rows: true class, columns: predicted, counts written in the cells (small class sets)."""
    n = len(names)
    plt, fig, ax = _figure(max(5, 0.35 * n + 3), max(4, 0.35 * n + 2))
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set(title=f"Confusion matrix ({int(matrix.sum())} videos)", xlabel="predicted", ylabel="true")
    fig.colorbar(image, ax=ax, label="videos")
    return _png(plt, fig)


def top_confusions(pairs: list[tuple[str, str, int, float]]) -> bytes:
    """The most frequent (true -> predicted) mistakes as bars of their count."""
    plt, fig, ax = _figure(8, max(2.5, 0.25 * len(pairs) + 1))
    y = np.arange(len(pairs))
    ax.barh(y, [p[2] for p in pairs], color="#c54")
    ax.set_yticks(y, [f"{t} → {p}" for t, p, _, _ in pairs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("videos")
    ax.set_title(f"Most frequent confusions (true → predicted), top {len(pairs)}" if pairs else "No confusions")
    return _png(plt, fig)


def confidence(top_prob: np.ndarray, correct: np.ndarray) -> bytes:
    """Histogram of the top-1 probability, correct and wrong predictions stacked."""
    plt, fig, ax = _figure(8, 3.2)
    bins = np.linspace(0, 1, 21)
    ax.hist([top_prob[correct], top_prob[~correct]], bins=bins, stacked=True, color=["#3a7", "#c54"])
    ax.legend([f"correct ({int(correct.sum())})", f"wrong ({int((~correct).sum())})"])
    ax.set(title="Top-1 probability of each readable video", xlabel="top-1 probability", ylabel="videos", xlim=(0, 1))
    return _png(plt, fig)
