"""Retrieval metrics against hand-computed values."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.data.synth import CLASS_PHRASES, CLASSES, make_scene, split_test_groups
from clipsearch.data.synthucf import (
    CLASS_ATTRIBUTES,
    DIRECTION_PAIRS,
    composed_query,
    default_heldout,
    freeform_queries,
    heldout_queries,
    is_heldout,
    read_meta,
)
from clipsearch.errors import InvalidInput
from clipsearch.evaluation.retrieval import (
    RetrievalReport,
    attribute_metrics,
    average_precision,
    decode_passes,
    embed_for_eval,
    evaluate_vectors,
    pair_metrics,
    retrieval_metrics,
)


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


# --- direction pairs ---------------------------------------------------------------------------


def _unit(*angles: float) -> np.ndarray:
    return np.array([[np.cos(a), np.sin(a)] for a in angles], dtype=np.float32)


def test_pairs_rank_within_the_pair_only() -> None:
    # Left clips near angle 0, Right clips near pi/2, two decoys (another class) right on
    # top of each query: they push every pair clip down the full ranking, not the pair one.
    clips = _unit(0.1, 0.2, 1.4, 1.5, 0.0, np.pi / 2)
    labels = ["BallRollingLeft"] * 2 + ["BallRollingRight"] * 2 + ["BallBouncing"] * 2
    queries = {"BallRollingLeft": _unit(0.0)[0], "BallRollingRight": _unit(np.pi / 2)[0]}
    full = {"BallRollingLeft": 0.25, "BallRollingRight": 0.75}
    pairs = pair_metrics(queries, clips, labels, full)
    assert pairs == {
        "BallRollingLeft/BallRollingRight": {
            "BallRollingLeft": 1.0,
            "BallRollingRight": 1.0,
            "mean": 1.0,
            "full_mean": 0.5,
        }
    }
    # queries swapped: each class's clips come 3rd and 4th of 4 -> (1/3 + 2/4) / 2
    swapped = {
        "BallRollingLeft": queries["BallRollingRight"],
        "BallRollingRight": queries["BallRollingLeft"],
    }
    p = pair_metrics(swapped, clips, labels, full)["BallRollingLeft/BallRollingRight"]
    assert p["BallRollingLeft"] == pytest.approx((1 / 3 + 2 / 4) / 2, abs=1e-6)
    assert p["mean"] == pytest.approx((1 / 3 + 2 / 4) / 2, abs=1e-6)


def test_pairs_missing_a_class_are_left_out() -> None:
    clips = _unit(0.1, 1.4, 0.5)
    labels = ["BoxGrowing", "BoxGrowing", "BoxSpinning"]
    queries = {"BoxGrowing": _unit(0.0)[0], "BoxShrinking": _unit(1.0)[0]}
    assert pair_metrics(queries, clips, labels, {"BoxGrowing": 1.0}) == {}


# --- free-form queries -------------------------------------------------------------------------

ROWS: list[dict[str, Any] | None] = [
    {"class": "BallBouncing", "color": "red", "size": "small"},
    {"class": "BallRollingLeft", "color": "red", "size": "large"},
    {"class": "BoxSpinning", "color": "orange", "size": "small"},
    {"class": "StripesScrolling", "color": "red", "size": "medium"},
    None,  # a clip without a metadata row is never relevant
]


def test_freeform_queries_from_attributes() -> None:
    queries = freeform_queries(ROWS)
    got = {q.text: (q.kind, q.relevant.tolist()) for q in queries}
    assert [q.text for q in queries] == [
        "a red ball",
        "an orange box",
        "red stripes",
        "something bouncing",
        "something rolling",
        "something spinning",
        "something scrolling",
        "a small ball",
        "a large ball",
        "a small box",
        "medium-sized stripes",
    ]
    assert got["a red ball"] == ("color_object", [True, True, False, False, False])
    assert got["something rolling"] == ("motion", [False, True, False, False, False])
    assert got["a small ball"] == ("size_object", [True, False, False, False, False])
    # the order does not depend on the clips' order
    assert [q.text for q in freeform_queries(ROWS[::-1])] == [q.text for q in queries]


def test_freeform_queries_every_clip_relevant_is_dropped() -> None:
    rows = [{"class": "BallBouncing", "color": "red", "size": "small"}] * 2
    assert freeform_queries(rows) == []


def test_attribute_metrics_perfect_and_reversed() -> None:
    queries = freeform_queries(ROWS[:3])  # a red ball, an orange box, ..., a small ball, ...
    by_text = {q.text: q for q in queries}
    clips = np.eye(3, dtype=np.float32)
    # each query's vector is the mean of its relevant clips: every ranking is perfect
    vecs = np.stack([q.relevant.astype(np.float32) / q.relevant.sum() for q in queries])
    m = attribute_metrics(vecs, queries, clips)
    assert m["freeform_mAP"] == 1.0 and m["n_freeform_queries"] == len(queries)
    assert set(m["freeform_by_kind"]) == {"color_object", "motion", "size_object"}
    bad = attribute_metrics(1.0 - vecs, queries, clips)
    assert bad["freeform_mAP"] < 0.9
    assert bad["freeform_AP"]["an orange box"] == pytest.approx(1 / 3, abs=1e-6)
    assert by_text["an orange box"].relevant.tolist() == [False, False, True]
    assert attribute_metrics(vecs[:0], [], clips)["freeform_mAP"] is None


# --- held-out compositions ---------------------------------------------------------------------


def test_composed_query_wording() -> None:
    assert composed_query("BallBouncing", "red") == "a red ball bouncing"
    assert composed_query("BoxSpinning", "orange") == "an orange box spinning"
    assert composed_query("DotsScattering", "blue") == "blue dots scattering"
    assert composed_query("BallRollingLeft", "white") == "a white ball rolling left"


def test_composed_queries_read_like_the_captions(tiny_synth: Path) -> None:
    meta = read_meta(tiny_synth)
    assert meta is not None and len(meta) == 32
    for row in meta.values():
        words = composed_query(row["class"], row["color"]).removeprefix("an ").removeprefix("a ")
        assert words in row["caption"]
    assert read_meta(tiny_synth / "UCF-101") is None


def test_class_attributes_cover_the_synth_classes() -> None:
    assert set(CLASS_ATTRIBUTES) == set(CLASSES)
    for cls, (obj, motion) in CLASS_ATTRIBUTES.items():
        assert CLASS_PHRASES[cls].startswith(f"{obj} {motion}")


def test_heldout_queries_and_is_heldout() -> None:
    combos = ["BallBouncing:red", "BoxSpinning:orange"]
    (ball, box) = heldout_queries(combos, ROWS)
    assert ball.text == "a red ball bouncing" and ball.kind == "heldout"
    assert ball.relevant.tolist() == [True, False, False, False, False]
    assert box.relevant.tolist() == [False, False, True, False, False]
    assert is_heldout({"class": "BoxSpinning", "color": "orange"}, combos)
    assert not is_heldout({"class": "BoxSpinning", "color": "red"}, combos)
    with pytest.raises(InvalidInput):
        is_heldout({"class": "BoxSpinning", "color": "red"}, ["BoxSpinning"])


def _synth_rows(groups: int = 25, clips: int = 4) -> list[dict[str, Any]]:
    """What a default SynthUCF build's synth_meta.jsonl says about class, group and colour."""
    return [
        {"class": c, "group": g, "clip": k, "color": make_scene(0, c, g).color}
        for c in CLASSES
        for g in range(1, groups + 1)
        for k in range(1, clips + 1)
    ]


@pytest.mark.parametrize("split", [1, 2, 3])
def test_default_heldout_constraints(split: int) -> None:
    rows = _synth_rows()
    combos = default_heldout(rows, split)
    assert len(combos) == 3
    test_groups = set(split_test_groups(split))
    pairs = {c for p in DIRECTION_PAIRS for c in p}
    parsed = [tuple(c.split(":")) for c in combos]
    assert len({cls for cls, _ in parsed}) == 3  # different classes
    assert not pairs & {cls for cls, _ in parsed}
    train = [r for r in rows if r["group"] not in test_groups and not is_heldout(r, combos)]
    for cls, color in parsed:
        ours = [r for r in rows if (r["class"], r["color"]) == (cls, color)]
        assert any(r["group"] in test_groups for r in ours)  # evaluable
        assert any(r["group"] not in test_groups for r in ours)  # something is withheld
        assert any(r["class"] == cls for r in train)  # the class is still learnt
        assert any(r["color"] == color for r in train)  # and so is the colour
    # deterministic, whatever the row order; read_meta's dict works too
    shuffled = list(rows)
    random.Random(1).shuffle(shuffled)
    assert default_heldout(shuffled, split) == combos
    assert default_heldout({str(i): r for i, r in enumerate(rows)}, split) == combos
    assert default_heldout(rows, split, n=1) == combos[:1]


def test_default_heldout_keeps_every_class_learnable() -> None:
    # split 1 trains on group 8 only: withholding its colour would remove the class
    rows = _synth_rows(groups=8, clips=1)
    assert default_heldout(rows, 1) == []
    assert default_heldout(rows, 1, n=0) == []


# --- the whole report --------------------------------------------------------------------------


def test_evaluate_vectors_report_shape(tiny_model_dir: Path) -> None:
    from clipsearch.model import load_model

    encoder = load_model(tiny_model_dir)
    rows = [r for r in ROWS if r is not None]
    labels = [r["class"] for r in rows]
    vectors = np.random.default_rng(0).normal(size=(len(rows), encoder.dim)).astype(np.float32)
    plain = evaluate_vectors(encoder, CLASSES, vectors, labels).metrics
    assert plain["n_queries"] == 4 and plain["pairs"] == {} and plain["pairs_mAP"] is None
    assert plain["freeform_mAP"] is None and plain["n_freeform_queries"] is None
    assert plain["heldout"] is None and plain["heldout_mAP"] is None
    assert "synth_meta.jsonl" in RetrievalReport(plain).table()
    assert "not trained with held-out" in RetrievalReport(plain).table()

    combos = ["BallBouncing:red", "BoxSpinning:green"]  # no green box among the clips
    full = evaluate_vectors(encoder, CLASSES, vectors, labels, meta=rows, heldout=combos)
    m = full.metrics
    assert m["n_freeform_queries"] == len(freeform_queries(rows))
    assert m["freeform_mAP"] == pytest.approx(np.mean(list(m["freeform_AP"].values())))
    assert m["heldout"] == combos and m["heldout_own"] is False
    assert m["heldout_AP"]["BoxSpinning:green"] is None
    assert m["heldout_mAP"] == m["heldout_AP"]["BallBouncing:red"]
    json.dumps(m, allow_nan=False)  # plain JSON, no NaN
    assert "withheld by the other model" in full.table()
    assert m["window_mAP"] is None and "as search does" not in full.table()
    assert m["freeform_mAP_interval"] is None and "resampled scenes" not in full.table()
    scened = evaluate_vectors(encoder, CLASSES, vectors, labels, meta=rows, interval=True)
    low, high = scened.metrics["freeform_mAP_interval"]
    assert 0 <= low <= high <= 1 and "resampled scenes" in scened.table()

    # ranked as the search ranks: one window that is the clip's own vector scores as the clip
    one = [v[None] for v in vectors]
    same = evaluate_vectors(encoder, CLASSES, vectors, labels, windows=one).metrics
    assert same["window_mAP"] == pytest.approx(same["mAP"])
    # three windows that match every class query lift every other clip: the ranking changes
    boost = encoder.encode_text([f"a video of {c}" for c in CLASSES]).mean(0)
    four = [np.stack([v, *[boost * (i % 2)] * 3]) for i, v in enumerate(vectors)]
    moved = evaluate_vectors(encoder, CLASSES, vectors, labels, windows=four).metrics
    assert moved["mAP"] == same["mAP"] and moved["window_mAP"] != same["window_mAP"]
    assert "as search does" in RetrievalReport(moved).table()


def test_embed_for_eval_shares_decoding_per_frame_count(
    tiny_synth: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from clipsearch.data.collection import load_collection
    from clipsearch.model import load_model

    four = tmp_path / "four-frames"
    shutil.copytree(tiny_model_dir, four)
    cfg = json.loads((four / "clipsearch.json").read_text())
    (four / "clipsearch.json").write_text(json.dumps({**cfg, "num_frames": 4}))
    eight, other = load_model(tiny_model_dir), load_model(four)
    clips = load_collection(tiny_synth).split(1, "test")[::4]
    encoders = [eight, other, eight]
    assert decode_passes(encoders) == 2
    done: list[int] = []
    embedded = embed_for_eval(encoders, clips, workers=1, progress=done.append)
    vectors, kept = embedded.vectors, embedded.kept
    assert sum(done) == 2 * len(clips) and kept == list(range(len(clips)))
    assert embedded.failed == []
    # the third encoder reuses the first one's decoded frames: same vectors as its own pass
    np.testing.assert_allclose(vectors[2], vectors[0], atol=1e-5)
    # windows pool the plan's frames whatever a model samples of a whole clip: the same
    # vectors; the whole-clip view is the model's own (4 frames, not 8)
    np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-5)
    assert {len(f) for f in embedded.frames[1]} == {4}
    assert max(len(f) for f in embedded.frames[0]) == 8
    # as ingest stores them: a clip's vector is the mean of its 2-s windows' vectors
    for vec, windows in zip(vectors[0], embedded.windows[0], strict=True):
        mean = windows.mean(0)
        np.testing.assert_allclose(vec, mean / np.linalg.norm(mean), atol=1e-5)
