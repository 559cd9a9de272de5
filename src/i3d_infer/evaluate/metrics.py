"""Clip fusion and accuracy metrics with mmaction2's exact semantics (spec §3), in numpy."""

from __future__ import annotations

import numpy as np

FUSIONS = ("prob", "score")


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def fuse_clips(logits: np.ndarray, num_views: int, fusion: str = "prob") -> np.ndarray:
    """Average the views of each video: ``(B * V, C)`` logits -> ``(B, C)`` scores.

    ``prob`` (mmaction2 ``average_clips='prob'``): softmax over classes, then the mean over views.
    ``score``: the plain mean of the logits.
    """
    logits = np.asarray(logits, dtype=np.float64)
    per_video = logits.reshape(-1, num_views, logits.shape[-1])  # (B * V, C) -> (B, V, C)
    if fusion == "prob":
        return softmax(per_video, axis=2).mean(axis=1)
    if fusion == "score":
        return per_video.mean(axis=1)
    raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, topk: tuple[int, ...] = (1, 5)) -> list[float]:
    """Fraction of videos whose label is among the k highest scores, for each k (mmaction2 ``top_k_accuracy``).

    Ties are broken exactly as mmaction2 does: the k highest are the last k of ``np.argsort(scores, axis=1)``.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1, 1)
    order = np.argsort(scores, axis=1)[:, ::-1]  # descending, as mmaction2
    return [float(np.any(order[:, :k] == labels, axis=1).mean()) for k in topk]


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class recall over the classes present in predictions or labels (mmaction2 ``mean_class_accuracy``).

    A class that appears only among the predictions has no label sample and counts as 0.
    """
    pred = np.argmax(scores, axis=1)
    labels = np.asarray(labels)
    classes = np.unique(np.concatenate([pred, labels]))
    recalls = []
    for c in classes:
        count = np.sum(labels == c)
        hits = np.sum((pred == c) & (labels == c))
        recalls.append(hits / count if count else 0.0)
    return float(np.mean(recalls))
