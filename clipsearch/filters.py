"""The one filter grammar of a search, for the API, the pages and ``clipsearch search``.

Filters come as a mapping of names to values (a query string's, a form's, a JSON body's or
the command line's): ``class`` (one or more, comma-separated or repeated), ``model``,
``split`` (``1:test``), ``min_duration`` and ``max_duration`` (seconds). Blanks are
ignored; anything malformed is an ``InvalidInput`` (HTTP 400) naming the filter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from clipsearch.errors import InvalidInput
from clipsearch.store.base import Range

FILTER_KEYS = ("class", "split", "min_duration", "max_duration", "model")
SPLIT_SIDES = ("train", "test")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{name} must be a number", code="invalid_filter")
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a number, got {value!r}", code="invalid_filter"
        ) from None
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"{name} must be a finite, non-negative number", code="invalid_filter")
    return number


def _strings(value: object, name: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(
                f"{name} must be a string or a list of strings", code="invalid_filter"
            )
        out += [part.strip() for part in item.split(",") if part.strip()]
    return out


def _split(value: object, name: str) -> tuple[str, str]:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string like 1:test", code="invalid_filter")
    number, _, side = value.strip().partition(":")
    if number not in ("1", "2", "3") or side not in SPLIT_SIDES:
        raise InvalidInput(
            f"{name} must look like 1:test or 2:train (split 1-3), got {value!r}",
            code="invalid_filter",
        )
    return f"split_{number}", side


def build_filter(
    values: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(store filter, the filters as given) from request values; blanks are ignored.
    Errors call a filter as ``names`` does (the command line's ``--split``), else by its
    key."""

    def name(key: str) -> str:
        return (names or {}).get(key, key)

    flt: dict[str, Any] = {}
    given: dict[str, Any] = {}
    present = {k: v for k, v in values.items() if k in FILTER_KEYS and v not in (None, "", [])}
    if "class" in present:
        classes = _strings(present["class"], name("class"))
        if classes:
            flt["class"] = classes if len(classes) > 1 else classes[0]
            given["class"] = classes
    if "model" in present:
        models = _strings(present["model"], name("model"))
        if models:
            flt["model"] = models if len(models) > 1 else models[0]
            given["model"] = models
    if "split" in present:
        key, side = _split(present["split"], name("split"))
        flt[key] = side
        given["split"] = f"{key[-1]}:{side}"
    low, high = (
        _number(present[key], name(key)) if key in present else None
        for key in ("min_duration", "max_duration")
    )
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            f"{name('min_duration')} ({low}) is above {name('max_duration')} ({high}): "
            "an empty range",
            code="invalid_filter",
        )
    if low is not None or high is not None:
        flt["duration_s"] = Range(gte=low, lte=high)
        given.update(
            {k: v for k, v in (("min_duration", low), ("max_duration", high)) if v is not None}
        )
    return flt, given
