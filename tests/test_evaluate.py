"""Retrieval metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from clipsearch.evaluate import average_precision, retrieval_metrics


def test_average_precision_hand_computed() -> None:
    # relevant at ranks 1, 3, 4 of 5: (1/1 + 2/3 + 3/4) / 3
    ap = average_precision(np.array([True, False, True, True, False]))
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert average_precision(np.array([False, False])) == 0.0


def test_retrieval_metrics_perfect_and_reversed() -> None:
    clips = np.eye(4, dtype=np.float32)
    labels = ["a", "a", "b", "b"]
    queries = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32) / np.sqrt(2)
    m = retrieval_metrics(queries, ["a", "b"], clips, labels)
    assert m["mAP"] == 1.0 and m["P@1"] == 1.0 and m["R@10"] == 1.0
    # P@k divides by k even when fewer clips exist: 2 relevant in the top 5 -> 0.4
    assert m["P@5"] == pytest.approx(2 / 5)
    assert m["per_class_AP"] == {"a": 1.0, "b": 1.0}
    assert (m["n_queries"], m["n_clips"]) == (2, 4)

    swapped = retrieval_metrics(queries[::-1].copy(), ["a", "b"], clips, labels)
    # relevant clips ranked 3rd and 4th: AP = (1/3 + 2/4) / 2
    assert swapped["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert swapped["P@1"] == 0.0


def test_queries_without_relevant_clips_are_left_out() -> None:
    clips = np.eye(2, dtype=np.float32)
    m = retrieval_metrics(np.eye(2, dtype=np.float32), ["a", "zzz"], clips, ["a", "b"])
    assert m["n_queries"] == 1 and "zzz" not in m["per_class_AP"]
