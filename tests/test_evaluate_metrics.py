"""Clip fusion and metrics against literal transcriptions of mmaction2 0.x's evaluation functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from i3d_infer.evaluate.metrics import fuse_clips, mean_class_accuracy, top_k_accuracy


def mm_top_k_accuracy(scores, labels, topk):
    """mmaction2 0.x ``mmaction.core.evaluation.top_k_accuracy``, transcribed."""
    res = []
    labels = np.array(labels)[:, np.newaxis]
    for k in topk:
        max_k_preds = np.argsort(scores, axis=1)[:, -k:][:, ::-1]
        match_array = np.logical_or.reduce(max_k_preds == labels, axis=1)
        res.append(match_array.sum() / match_array.shape[0])
    return res


def mm_mean_class_accuracy(scores, labels):
    """mmaction2 0.x ``mean_class_accuracy`` with its ``confusion_matrix``, transcribed."""
    pred = np.argmax(scores, axis=1)
    label_set = np.unique(np.concatenate((pred, labels)))
    label_map = {label: i for i, label in enumerate(label_set)}
    cf = np.zeros((len(label_set), len(label_set)), dtype=np.int64)
    for real, p in zip(labels, pred, strict=True):
        cf[label_map[real]][label_map[p]] += 1
    cls_cnt, cls_hit = cf.sum(axis=1), np.diag(cf)
    return np.mean([hit / cnt if cnt else 0.0 for cnt, hit in zip(cls_cnt, cls_hit, strict=True)])


def test_prob_fusion_is_softmax_then_mean():
    logits = np.random.default_rng(0).normal(size=(3 * 10, 400)).astype(np.float32)
    expected = torch.softmax(torch.from_numpy(logits).double().view(3, 10, 400), dim=2).mean(dim=1).numpy()
    fused = fuse_clips(logits, 10, "prob")
    assert fused.shape == (3, 400)
    np.testing.assert_allclose(fused, expected, rtol=1e-12)
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, rtol=1e-12)


def test_score_fusion_is_mean_of_logits():
    logits = np.arange(2 * 3 * 4, dtype=np.float32).reshape(6, 4)
    np.testing.assert_allclose(fuse_clips(logits, 3, "score"), [[4, 5, 6, 7], [16, 17, 18, 19]])
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse_clips(logits, 3, "max")


def test_known_values():
    scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7]])
    labels = np.array([1, 2, 2, 0])
    assert top_k_accuracy(scores, labels, (1, 2, 3)) == [0.5, 0.75, 1.0]
    # predictions 1, 0, 2, 2; classes {0, 1, 2}: recall 0/1, 1/1, 1/2 -> mean 0.5
    assert mean_class_accuracy(scores, labels) == pytest.approx(0.5)


def test_class_only_among_predictions_counts_as_zero():
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([1, 1])  # class 0 is predicted once but never a label
    assert mean_class_accuracy(scores, labels) == pytest.approx((0.0 + 0.5) / 2)


def test_ties_follow_mmaction2():
    scores = np.array([[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    for labels in ([0, 1], [3, 0], [2, 2]):
        for k in (1, 2, 3):
            assert top_k_accuracy(scores, np.array(labels), (k,)) == mm_top_k_accuracy(scores, labels, (k,))
        assert mean_class_accuracy(scores, np.array(labels)) == pytest.approx(mm_mean_class_accuracy(scores, labels))


@pytest.mark.parametrize("seed", range(5))
def test_random_agreement_with_mmaction2(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((200, 40)).round(2)  # rounding makes ties common
    labels = rng.integers(0, 40, 200)
    assert top_k_accuracy(scores, labels, (1, 5)) == mm_top_k_accuracy(scores, labels, (1, 5))
    assert mean_class_accuracy(scores, labels) == pytest.approx(mm_mean_class_accuracy(scores, labels), abs=1e-15)
