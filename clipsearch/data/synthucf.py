"""Reading SynthUCF's files: clip attributes from ``synth_meta.jsonl`` (free-form queries
and held-out compositions) and the labelled spans of ``moments.jsonl``
(:func:`read_moments`). The generator that writes them is :mod:`clipsearch.data.synth`.

A SynthUCF class is one object doing one motion (:data:`CLASS_ATTRIBUTES`);
``synth_meta.jsonl`` adds each clip's colour, size, speed and background. From
these this module builds text queries whose relevant clips are known (a clip is
relevant when its attributes match), and picks the colour x class combinations
a training run withholds to test composition ("Class:colour" strings such as
``"BoxSpinning:red"``).

The attribute code is pure: rows in, queries or combos out. Query wording follows
the captions of :func:`clipsearch.data.synth.make_caption` ("a small red ball bouncing").
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.data.collection import class_phrase
from clipsearch.errors import DatasetError, InvalidInput
from clipsearch.data.synth import (
    _SIZE_WORDS,  # the captions' size wording ("medium-sized"), kept in one place
    CLASS_PHRASES,
    CLASSES,
    COLORS,
    META_FILE,
    MOMENTS_FILE,
    REVERSED_OF,
    SIZES,
    split_test_groups,
)

MetaRow = Mapping[str, Any]

CLASS_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "BallBouncing": ("ball", "bouncing"),
    "BallRollingLeft": ("ball", "rolling"),
    "BallRollingRight": ("ball", "rolling"),
    "BoxSpinning": ("box", "spinning"),
    "BoxGrowing": ("box", "growing"),
    "BoxShrinking": ("box", "shrinking"),
    "TriangleRising": ("triangle", "rising"),
    "TriangleFalling": ("triangle", "falling"),
    "StarBlinking": ("star", "blinking"),
    "RingOrbiting": ("ring", "orbiting"),
    "StripesScrolling": ("stripes", "scrolling"),
    "DotsScattering": ("dots", "scattering"),
}
"""SynthUCF class -> (object noun, motion), e.g. ``"BallRollingLeft"`` -> ("ball", "rolling")."""

DIRECTION_PAIRS: tuple[tuple[str, str], ...] = tuple((a, b) for b, a in REVERSED_OF.items())
"""Classes with the same frames in opposite order: (RollingLeft, RollingRight), ..."""

FREEFORM_KINDS = ("color_object", "motion", "size_object")


@dataclass(frozen=True)
class AttributeQuery:
    """A text query with its relevance over a list of clips (bool per clip)."""

    text: str
    kind: str  # one of FREEFORM_KINDS, or "heldout"
    relevant: np.ndarray


# --- reading -----------------------------------------------------------------------------------


def read_meta(root: str | Path) -> dict[str, dict[str, Any]] | None:
    """``<root>/synth_meta.jsonl`` rows keyed by clip path (relative to ``UCF-101/``).

    None when the dataset has no such file (real UCF101, loose folders).
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    rows: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise DatasetError(f"{path}:{n}: not a JSON object with a path")
        rows[row["path"]] = row
    return rows


# --- wording -----------------------------------------------------------------------------------


def _article(noun_phrase: str, noun: str) -> str:
    """``"a red ball"``, ``"an orange ball"``, ``"red stripes"`` (plural nouns take none)."""
    if noun.endswith("s"):
        return noun_phrase
    return ("an " if noun_phrase[:1] in "aeiou" else "a ") + noun_phrase


def object_query(modifier: str, obj: str) -> str:
    """``"a red ball"``, ``"a medium-sized box"``, ``"red stripes"``."""
    return _article(f"{modifier} {obj}", obj)


def motion_query(motion: str) -> str:
    return f"something {motion}"


def composed_query(class_name: str, color: str) -> str:
    """The class phrase with the colour before the noun: ``"a red ball bouncing"``."""
    phrase = CLASS_PHRASES.get(class_name) or class_phrase(class_name)
    return _article(f"{color} {phrase}", phrase.split()[0])


# --- free-form queries -------------------------------------------------------------------------


def _rank(order: Sequence[str]) -> Any:
    index = {v: i for i, v in enumerate(order)}
    return lambda v: (index.get(v, len(index)), v)


_OBJECTS = list(dict.fromkeys(o for o, _ in CLASS_ATTRIBUTES.values()))
_MOTIONS = list(dict.fromkeys(m for _, m in CLASS_ATTRIBUTES.values()))


def _attr(row: MetaRow | None, key: str) -> str | None:
    if row is None:
        return None
    if key in ("object", "motion"):
        pair = CLASS_ATTRIBUTES.get(str(row.get("class")))
        return None if pair is None else pair[0 if key == "object" else 1]
    value = row.get(key)
    return value if isinstance(value, str) else None


def freeform_queries(rows: Sequence[MetaRow | None]) -> list[AttributeQuery]:
    """Attribute queries over clips whose metadata rows are ``rows`` (None: no row).

    Kinds, in this order: ``"a {color} {object}"`` (relevant: colour and object
    match), ``"something {motion}"`` (motion matches), ``"a {size} {object}"``
    (size and object match). A query is kept when at least one clip, but not
    every clip, is relevant. Order is fixed: objects and motions as in
    :data:`CLASS_ATTRIBUTES`, colours as in ``synth.COLORS``, sizes small..large.
    """
    objects = [_attr(r, "object") for r in rows]
    columns = {k: [_attr(r, k) for r in rows] for k in ("motion", "color", "size")}
    obj_arr = np.asarray(objects, dtype=object)

    def values(found: Iterable[str | None], order: Sequence[str]) -> list[str]:
        return sorted({v for v in found if v is not None}, key=_rank(order))

    candidates: list[AttributeQuery] = []
    for obj in values(objects, _OBJECTS):
        for color in values(columns["color"], list(COLORS)):
            relevant = (obj_arr == obj) & (np.asarray(columns["color"], dtype=object) == color)
            candidates.append(AttributeQuery(object_query(color, obj), "color_object", relevant))
    for motion in values(columns["motion"], _MOTIONS):
        relevant = np.asarray(columns["motion"], dtype=object) == motion
        candidates.append(AttributeQuery(motion_query(motion), "motion", relevant))
    for obj in values(objects, _OBJECTS):
        for size in values(columns["size"], SIZES):
            relevant = (obj_arr == obj) & (np.asarray(columns["size"], dtype=object) == size)
            word = _SIZE_WORDS.get(size, size)
            candidates.append(AttributeQuery(object_query(word, obj), "size_object", relevant))
    return [q for q in candidates if 0 < int(q.relevant.sum()) < len(rows)]


# --- held-out compositions ---------------------------------------------------------------------


def parse_combo(combo: str) -> tuple[str, str]:
    """``"BoxSpinning:red"`` -> ("BoxSpinning", "red")."""
    cls, sep, color = combo.partition(":")
    if not sep or not cls.strip() or not color.strip():
        raise InvalidInput(f"a held-out combination is 'Class:colour', got {combo!r}")
    return cls.strip(), color.strip()


def is_heldout(meta_row: MetaRow, combos: Iterable[str]) -> bool:
    """Whether a clip's (class, colour) is one of the "Class:colour" ``combos``."""
    key = (meta_row.get("class"), meta_row.get("color"))
    return any(parse_combo(c) == key for c in combos)


def heldout_queries(combos: Sequence[str], rows: Sequence[MetaRow | None]) -> list[AttributeQuery]:
    """One composed query per combo (``"a red ball bouncing"``); relevant: that class and colour."""
    out = []
    for combo in combos:
        cls, color = parse_combo(combo)
        relevant = np.array(
            [r is not None and (r.get("class"), r.get("color")) == (cls, color) for r in rows],
            dtype=bool,
        )
        out.append(AttributeQuery(composed_query(cls, color), "heldout", relevant))
    return out


def default_heldout(
    meta_rows: Iterable[MetaRow] | Mapping[str, MetaRow], split: int, n: int = 3
) -> list[str]:
    """Up to ``n`` "Class:colour" combos to withhold from training on ``split`` (1..3).

    ``meta_rows`` are ``synth_meta.jsonl`` rows (a list, or :func:`read_meta`'s dict).
    Each combo has clips in the split's test groups and clips in its training
    groups (those are the ones withheld); combos come from different classes and
    never from a direction pair (those figures stay intact); after withholding,
    every chosen class keeps training clips of another colour and every chosen
    colour keeps training clips of another class, so both parts are learnt.
    Different colours are preferred. Ranked by most test clips, then class and
    colour order; the result does not depend on row order. Fewer than ``n`` (or
    none) when the data do not allow more.
    """
    if n < 0:
        raise InvalidInput(f"n must be >= 0, got {n}")
    rows = meta_rows.values() if isinstance(meta_rows, Mapping) else meta_rows
    test_groups = set(split_test_groups(split))
    test: Counter[tuple[str, str]] = Counter()
    train: Counter[tuple[str, str]] = Counter()
    for row in rows:
        cls, color, group = row.get("class"), row.get("color"), row.get("group")
        if isinstance(cls, str) and isinstance(color, str) and isinstance(group, int):
            (test if group in test_groups else train)[(cls, color)] += 1
    class_train: Counter[str] = Counter()
    color_train: Counter[str] = Counter()
    for (cls, color), count in train.items():
        class_train[cls] += count
        color_train[color] += count

    paired = {c for pair in DIRECTION_PAIRS for c in pair}
    class_rank, color_rank = _rank(CLASSES), _rank(list(COLORS))
    candidates = sorted(
        (k for k in test if k[0] not in paired and train[k] > 0),
        key=lambda k: (-test[k], class_rank(k[0]), color_rank(k[1])),
    )

    def learnable(combos: list[tuple[str, str]]) -> bool:
        withheld: Counter[str] = Counter()
        for k in combos:
            withheld[k[1]] += train[k]
        return all(
            class_train[cls] > train[(cls, color)] and color_train[color] > withheld[color]
            for cls, color in combos
        )

    chosen: list[tuple[str, str]] = []
    for distinct_colors in (True, False):
        for cls, color in candidates:
            if len(chosen) >= n:
                break
            if any(c == cls or (distinct_colors and col == color) for c, col in chosen):
                continue
            if learnable([*chosen, (cls, color)]):
                chosen.append((cls, color))
    return [f"{cls}:{color}" for cls, color in chosen]


# --------------------------------------------------------------------------- moments.jsonl

_END_SLACK_S = 0.05  # how far a labelled span may end past the clip's duration


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_moment_line(obj: object, seen: set[str]) -> str | None:
    """Why one parsed moments.jsonl line is malformed, or None when it is fine."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    missing = [k for k in ("path", "duration_s", "segments") if k not in obj]
    if missing:
        return f"missing key(s) {', '.join(missing)}"
    path, duration, spans = obj["path"], obj["duration_s"], obj["segments"]
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        return f"path must be a relative file path, got {path!r}"
    if path in seen:
        return f"duplicate path {path!r}"
    if not _is_number(duration) or duration <= 0:
        return f"duration_s must be a positive number, got {duration!r}"
    if not isinstance(spans, list) or not spans:
        return "segments must be a non-empty list"
    prev_end = 0.0
    for i, span in enumerate(spans, 1):
        if not isinstance(span, dict):
            return f"segment {i} is not a JSON object"
        missing = [k for k in ("class", "start_s", "end_s") if k not in span]
        if missing:
            return f"segment {i}: missing key(s) {', '.join(missing)}"
        cls, start, end = span["class"], span["start_s"], span["end_s"]
        if not isinstance(cls, str) or not cls:
            return f"segment {i}: class must be a non-empty string, got {cls!r}"
        if not _is_number(start) or not _is_number(end):
            return f"segment {i}: start_s and end_s must be numbers, got {start!r}, {end!r}"
        if start < 0 or start >= end:
            return f"segment {i}: needs 0 <= start_s < end_s, got {start} .. {end}"
        if start < prev_end - 1e-6:
            return f"segment {i} starts at {start}, before segment {i - 1} ends ({prev_end})"
        if end > duration + _END_SLACK_S:
            return f"segment {i} ends at {end}, past the clip's duration_s {duration}"
        prev_end = float(end)
    return None


def read_moments(folder: str | Path) -> list[dict[str, Any]]:
    """Read and validate ``moments.jsonl`` (in ``folder``, or the file itself).

    Each entry has at least ``path`` (relative to the folder), ``duration_s`` and
    ``segments`` (``class``, ``start_s``, ``end_s``), sorted, non-overlapping and within
    the duration. Malformed content raises :class:`InvalidInput` naming file and line.
    """
    path = Path(folder).expanduser()
    if path.is_dir():
        path = path / MOMENTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such moments file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read ({exc})") from None
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        problem = _check_moment_line(obj, seen)
        if problem is not None:
            raise InvalidInput(f"{path}:{lineno}: {problem}")
        seen.add(obj["path"])
        entries.append(obj)
    return entries
